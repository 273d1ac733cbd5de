// Which config keys a resumed run may change.
//
// --resume promises the parameters of an uninterrupted run (trainer_test checks it bit for bit),
// so a key that enters the training computation must keep the value the checkpoint was trained
// with. What may change is how long the run goes on and what it writes and where it runs:
//   train.steps, log.*, eval.*, run.*, description, preset
// run.backend and run.math change the arithmetic's rounding, not the model: moving a run to a GPU
// is allowed. Everything else is refused, by kind:
//   the model      model.* (z_dim, latent, init, generator, discriminator)
//   the data       data.name, train.batch, train.seed (the data order and the noise)
//   the objective  train.loss, d_steps, label_smoothing, gp_weight, clip, r1_gamma, r1_interval,
//                  dragan_spread, began_gamma, began_lambda_k, began_k0
//   the optimizer  optim.g.*, optim.d.* (name, lr, beta1, beta2, eps, weight_decay, momentum, alpha)
#pragma once

#include <string>

#include "gancu/config.h"

namespace gancu {

// "" when `key` may change on resume, else what it changes ("the model", "the data", ...).
std::string resume_refuses(const std::string& key);

// UsageError listing every refused key (with both values) when `now` differs from `saved` (the
// newest checkpoint's config) in such keys; `checkpoint` names the file in the message.
void check_resume_config(const Config& saved, const Config& now, const std::string& checkpoint);

}  // namespace gancu
