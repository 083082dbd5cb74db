# Fit a mixture of linear regressions with a multinomial-logit gate using
# flexmix, and print the result as one JSON line prefixed by "FLEXMIX_JSON ".
#
# Usage:
#   Rscript flexmix_fit.R CSV K NREP SEED ITER_MAX TOLERANCE MINPRIOR
#
#   CSV        file with a header; column "y" is the target, every other
#              column is an input feature (all numeric)
#   K          number of components requested
#   NREP       number of EM restarts; the one with the highest logLik is kept
#   SEED       base seed; restart r (1-based) uses set.seed(SEED + r - 1)
#   ITER_MAX   flexmix control iter.max (EM iterations per restart)
#   TOLERANCE  flexmix control tolerance (EM stops when the change in
#              log-likelihood falls below it)
#   MINPRIOR   flexmix control minprior (components whose prior falls below
#              it are removed during EM; flexmix's default is 0.05)
#
# The model is
#   flexmix(y ~ ., data = df, k = K,
#           concomitant = FLXPmultinom(~ x1 + ... + xd), control = ...)
# i.e. Gaussian linear experts on all inputs and a softmax gate on all inputs.
# The gate formula lists the inputs explicitly: FLXPmultinom(~ .) would expand
# "." against the whole data frame, response included, and so gate on y.
#
# Restarts: an explicit loop of flexmix() calls, one seed each, keeping the
# best log-likelihood.  This is what stepFlexmix(..., nrep = NREP) does
# internally, but the loop also lets us record the iterations, log-likelihood
# and surviving components of every restart.
#
# Timing covers only the flexmix() calls (all restarts), measured with
# proc.time() elapsed; R start-up, package loading and CSV reading are
# excluded.

suppressPackageStartupMessages(library(flexmix))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 7) {
  stop("usage: Rscript flexmix_fit.R CSV K NREP SEED ITER_MAX TOLERANCE MINPRIOR")
}
csv <- args[1]
k <- as.integer(args[2])
nrep <- as.integer(args[3])
seed <- as.integer(args[4])
iter_max <- as.integer(args[5])
tolerance <- as.numeric(args[6])
minprior <- as.numeric(args[7])

df <- read.csv(csv, header = TRUE)
inputs <- setdiff(names(df), "y")
gate_formula <- as.formula(paste("~", paste(inputs, collapse = " + ")))
control <- list(iter.max = iter_max, tolerance = tolerance,
                minprior = minprior, verbose = 0)

num <- function(x) {
  if (is.na(x) || !is.finite(x)) "null" else sprintf("%.17g", x)
}
str_json <- function(x) {
  paste0("\"", gsub("\"", "'", gsub("\n", " ", x)), "\"")
}

restarts <- character(0)
best <- NULL
best_ll <- -Inf
best_rep <- NA_integer_
fit_time <- 0
for (r in seq_len(nrep)) {
  set.seed(seed + r - 1L)
  t0 <- proc.time()[["elapsed"]]
  fit <- tryCatch(
    flexmix(y ~ ., data = df, k = k,
            concomitant = FLXPmultinom(gate_formula), control = control),
    error = function(e) conditionMessage(e))
  elapsed <- proc.time()[["elapsed"]] - t0
  fit_time <- fit_time + elapsed
  if (is.character(fit)) {
    restarts <- c(restarts, sprintf(
      "{\"seed\": %d, \"time_s\": %s, \"error\": %s}",
      seed + r - 1L, num(elapsed), str_json(fit)))
    next
  }
  ll <- as.numeric(logLik(fit))
  restarts <- c(restarts, sprintf(
    "{\"seed\": %d, \"time_s\": %s, \"n_iter\": %d, \"loglik\": %s, \"k_kept\": %d, \"converged\": %s}",
    seed + r - 1L, num(elapsed), fit@iter, num(ll), fit@k,
    tolower(as.character(fit@converged))))
  if (ll > best_ll) {
    best <- fit
    best_ll <- ll
    best_rep <- r
  }
}

if (is.null(best)) {
  body <- sprintf("\"time_s\": %s, \"n_iter\": null, \"loglik\": null, \"k_kept\": null, \"converged\": false",
                  num(fit_time))
} else {
  body <- sprintf(
    "\"time_s\": %s, \"n_iter\": %d, \"loglik\": %s, \"k_kept\": %d, \"converged\": %s, \"best_restart\": %d, \"df\": %d",
    num(fit_time), best@iter, num(best_ll), best@k,
    tolower(as.character(best@converged)), best_rep,
    as.integer(attr(logLik(best), "df")))
}
cat(sprintf(
  "FLEXMIX_JSON {%s, \"n_samples\": %d, \"k_requested\": %d, \"nrep\": %d, \"flexmix_version\": \"%s\", \"restarts\": [%s]}\n",
  body, nrow(df), k, nrep, format(packageVersion("flexmix")),
  paste(restarts, collapse = ", ")))
