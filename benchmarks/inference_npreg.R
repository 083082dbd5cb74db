# flexmix on NPreg: yn ~ x + I(x^2), k = 2, constant prior (flexmix's own
# example), best of NREP starts; then refit() by its two methods.
#
# Usage: Rscript inference_npreg.R NPREG_CSV OUT_PREFIX NREP
# Writes OUT_PREFIX_optim.csv (refit(method = "optim"): name, coef, se),
# OUT_PREFIX_mstep.csv (refit(method = "mstep"): component, term, coef, se),
# OUT_PREFIX_em.csv (the EM estimate, sigma per component) and
# OUT_PREFIX_posterior.csv; prints the log-likelihoods.
suppressPackageStartupMessages(library(flexmix))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
out <- args[2]
nrep <- as.integer(args[3])
best <- NULL
for (r in seq_len(nrep)) {
  set.seed(r)
  f <- flexmix(yn ~ x + I(x^2), data = d, k = 2,
               control = list(tolerance = 1e-12, iter.max = 5000, minprior = 0))
  if (is.null(best) || logLik(f) > logLik(best)) best <- f
}
f <- best
cat("flexmix EM log-likelihood:", format(as.numeric(logLik(f)), digits = 12), "\n")
em <- parameters(f)
write.csv(data.frame(term = rownames(em), comp1 = em[, 1], comp2 = em[, 2],
                     prior = NA), paste0(out, "_em.csv"), row.names = FALSE)
write.csv(posterior(f), paste0(out, "_posterior.csv"), row.names = FALSE)
ro <- refit(f)  # method = "optim": BFGS on the full log-likelihood, optim's Hessian
write.csv(data.frame(name = names(ro@coef), coef = ro@coef,
                     se = sqrt(diag(ro@vcov))), paste0(out, "_optim.csv"),
          row.names = FALSE)
cat("log-likelihood at refit(optim)'s point:",
    format(flexmix:::FLXlogLikfun(f)(ro@coef), digits = 12), "\n")
# refit(method = "mstep"): each component refitted as a weighted glm on the
# posteriors (flexmix's object@refit), summarised by summary.glm.
rm <- refit(f, method = "mstep")
rows <- list()
for (k in 1:2) {
  s <- coef(summary(rm@components[[1]][[k]]))
  rows[[k]] <- data.frame(component = k, term = rownames(s), coef = s[, 1], se = s[, 2])
}
write.csv(do.call(rbind, rows), paste0(out, "_mstep.csv"), row.names = FALSE)
