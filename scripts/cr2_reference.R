# CR2 (Bell–McCaffrey) cluster-robust errors for few clusters, from clubSandwich, on the
# stored synthetic rows tests/data/inference/few_clusters.csv (8 clusters). Run once from
# the project root: Rscript scripts/cr2_reference.R; writes tests/data/inference/r_cr2.csv.
suppressPackageStartupMessages(library(clubSandwich))
d <- read.csv("tests/data/inference/few_clusters.csv")
fits <- list(linear = lm(y ~ x1 + x2, data = d),
             logistic = glm(yb ~ x1 + x2, data = d, family = binomial))
out <- do.call(rbind, lapply(names(fits), function(name) {
  f <- fits[[name]]
  naive <- coef_test(f, vcov = "CR2", cluster = d$cluster, test = "naive-t")
  satt <- coef_test(f, vcov = "CR2", cluster = d$cluster, test = "Satterthwaite")
  data.frame(model = name, term = names(coef(f)), coef = unname(coef(f)),
             se_cr2 = naive$SE, df_naive = naive$df_t, p_naive = naive$p_t,
             df_satterthwaite = satt[[5]], p_satterthwaite = satt[[6]])
}))
write.csv(out, "tests/data/inference/r_cr2.csv", row.names = FALSE)
cat(sprintf("clubSandwich %s\n", packageVersion("clubSandwich")))
