# lme4 on the benchmark's rows (benchmarks/bench_lmm.py data writes them): the trajectory
# model, ML, lme4's default optimiser; the time of lmer() alone, not of reading the file.
#
#   Rscript benchmarks/lme4_reference.R            (from the project root)
#
# Writes benchmarks/results/lme4_reference.csv: per size, the fixed effects, their standard
# errors (vcov()), the log-likelihood, the fit's seconds, rows and clients; and the R session.
# Where it is affordable (not at 1.76M clients) the model is fitted a second time with the
# optimiser run to a far tighter tolerance (bobyqa, rhoend 1e-12: kinds *_tight), so that
# a comparison to 1e-6 tests the optimum itself, not where lme4's default stopped.
suppressPackageStartupMessages({
  library(lme4)
  library(data.table)
})
sizes <- c("default", "100k", "1.76M")
rows <- list()
for (size in sizes) {
  d <- fread(file.path("benchmarks/.data", paste0("lmm_", size, ".csv")))
  d$episode <- factor(d$episode)
  seconds <- system.time(
    f <- lmer(score ~ weeks + alliance_score_within + alliance_score_between +
                (weeks | episode), data = d, REML = FALSE)
  )[["elapsed"]]
  rows[[size]] <- rbind(
    data.frame(size = size, kind = "estimate", name = names(fixef(f)), value = unname(fixef(f))),
    data.frame(size = size, kind = "se", name = names(fixef(f)),
               value = unname(sqrt(diag(as.matrix(vcov(f)))))),
    data.frame(size = size, kind = c("loglik", "seconds", "rows", "clients"),
               name = c("logLik", "elapsed", "n", "groups"),
               value = c(as.numeric(logLik(f)), seconds, nrow(d), nlevels(d$episode)))
  )
  if (size != "1.76M") {
    tight <- lmer(score ~ weeks + alliance_score_within + alliance_score_between +
                    (weeks | episode), data = d, REML = FALSE,
                  control = lmerControl(optimizer = "bobyqa",
                                        optCtrl = list(maxfun = 1e6, rhoend = 1e-12)))
    rows[[paste(size, "tight")]] <- data.frame(
      size = size, kind = c(rep("estimate_tight", 4), rep("se_tight", 4), "loglik_tight"),
      name = c(names(fixef(tight)), names(fixef(tight)), "logLik"),
      value = c(unname(fixef(tight)), unname(sqrt(diag(as.matrix(vcov(tight))))),
                as.numeric(logLik(tight))))
  }
  cat(size, nrow(d), "rows:", seconds, "s\n")
  rm(f, d); invisible(gc())
}
write.csv(do.call(rbind, rows), "benchmarks/results/lme4_reference.csv", row.names = FALSE)
writeLines(capture.output(sessionInfo()), "benchmarks/results/lme4_session.txt")
