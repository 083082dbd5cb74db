# Fit a mixture of GLMs with constant mixing weights using flexmix, and print
# the result as one JSON line prefixed by "FLEXMIX_JSON ".
#
# Usage:
#   Rscript flexmix_glm.R CSV FAMILY K NREP SEED
#
#   CSV     file with a header and numeric columns "x" and "y"
#   FAMILY  glm family of the components: "poisson", "Gamma" or "gaussian"
#   K       number of components requested
#   NREP    number of EM restarts; the one with the highest logLik is kept
#   SEED    base seed; restart r (1-based) uses set.seed(SEED + r - 1)
#
# The model is flexmix's documented GLM example (?FLXMRglm, on NPreg):
#   flexmix(y ~ x, data = df, k = K, model = FLXMRglm(family = FAMILY))
# with flexmix's default control (iter.max 200, tolerance 1e-6, minprior
# 0.05). Restarts: an explicit loop of flexmix() calls, as stepFlexmix(nrep=)
# does internally. Timing covers only the flexmix() calls (all restarts).
# BIC is flexmix's BIC(fit): -2 logLik + df log(n), df counting every
# component's coefficients, the K - 1 free mixing weights and, for Gamma and
# gaussian, the dispersion of every component.

suppressPackageStartupMessages(library(flexmix))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 5) {
  stop("usage: Rscript flexmix_glm.R CSV FAMILY K NREP SEED")
}
df <- read.csv(args[1], header = TRUE)
family <- args[2]
k <- as.integer(args[3])
nrep <- as.integer(args[4])
seed <- as.integer(args[5])

num <- function(x) {
  if (is.na(x) || !is.finite(x)) "null" else sprintf("%.17g", x)
}

best <- NULL
best_ll <- -Inf
lls <- character(0)
fit_time <- 0
for (r in seq_len(nrep)) {
  set.seed(seed + r - 1L)
  t0 <- proc.time()[["elapsed"]]
  fit <- tryCatch(
    flexmix(y ~ x, data = df, k = k, model = FLXMRglm(family = family)),
    error = function(e) NULL)
  fit_time <- fit_time + proc.time()[["elapsed"]] - t0
  if (is.null(fit)) {
    lls <- c(lls, "null")
    next
  }
  ll <- as.numeric(logLik(fit))
  lls <- c(lls, num(ll))
  if (ll > best_ll) {
    best <- fit
    best_ll <- ll
  }
}

if (is.null(best)) {
  body <- sprintf("\"time_s\": %s, \"loglik\": null", num(fit_time))
} else {
  body <- sprintf(
    "\"time_s\": %s, \"loglik\": %s, \"df\": %d, \"bic\": %s, \"n_iter\": %d, \"k_kept\": %d, \"prior\": [%s], \"coef\": [%s]",
    num(fit_time), num(best_ll), as.integer(attr(logLik(best), "df")),
    num(BIC(best)), best@iter, best@k,
    paste(sapply(prior(best), num), collapse = ", "),
    paste(sapply(as.vector(parameters(best)), num), collapse = ", "))
}
cat(sprintf(
  "FLEXMIX_JSON {%s, \"n_samples\": %d, \"nrep\": %d, \"restart_logliks\": [%s], \"flexmix_version\": \"%s\"}\n",
  body, nrow(df), nrep, paste(lls, collapse = ", "), format(packageVersion("flexmix"))))
