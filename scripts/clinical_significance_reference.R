# Reference results for pipeline/clinical_significance.py, from the R package itself.
#
# Source: the R package clinicalsignificance (Claus, Wager & Bonnet 2024, Journal of
# Statistical Software 111(1); https://github.com/pedscience/clinicalsignificance), version
# 2.1.0.9000, commit 863dc77bddea89d14ff88ee332a334b305e2fe13, licence GPL (>= 3). Its two
# public datasets are written out as the test fixtures:
#   - claus_2020 (data/claus_2020.rda; Claus, Scherbaum & Bonnet 2020, Psychotherapy and
#     Psychosomatics 89(4), https://doi.org/10.1159/000505855; raw data at
#     https://osf.io/rc754/), without the age and sex columns;
#   - jacobson_1989 (data/jacobson_1989.rda; Jacobson et al. 1989, Behaviour Research and
#     Therapy 27(2), https://doi.org/10.1016/0005-7967(89)90076-4).
# Both are redistributed here as the package distributes them (GPL >= 3), for tests only.
#
# Run (needs R >= 4.2 with dplyr, tidyr, purrr, rlang, tibble, cli, insight, ggplot2,
# lme4, BayesFactor, bayestestR; Debian: apt-get install r-base-core r-cran-dplyr ...):
#
#   git clone https://github.com/pedscience/clinicalsignificance /tmp/cs
#   git -C /tmp/cs checkout 863dc77bddea89d14ff88ee332a334b305e2fe13
#   Rscript scripts/clinical_significance_reference.R /tmp/cs
#
# It installs the package into a temporary library and writes, in
# tests/data/clinical_significance/:
#   claus_2020.csv, jacobson_1989.csv  the datasets;
#   expected_counts.csv                clients per category: setting, approach
#                                      (distribution = cs_distribution, statistical =
#                                      cs_statistical, combined = cs_combined), method,
#                                      category, n;
#   expected_clients.csv               each client's combined category and index;
#   expected_ha_group.csv              the Hageman-Arrindell group-level proportions;
#   reference_session.txt              R and package versions, and any shim applied.
# The analyses are those of settings.csv (the same file the Python tests read).
#
# Shim: the package uses dplyr >= 1.1 syntax (join_by("id") and .by = in summarise) in its
# summary tables. With an older dplyr (Debian 12 has 1.0.10) the installed copy has
# join_by("id") replaced by "id" and ".by = tidyr::all_of(group_var)" by
# '.groups = "drop"' in R/create_summary_table.R and R/cs_get_augmented_data.R: the same
# join and, for the ungrouped analyses run here, the same summary. No formula is touched.
# The run reproduces the package's own test snapshots (tests/testthat/_snaps/) exactly.

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1) stop("usage: Rscript scripts/clinical_significance_reference.R PACKAGE_SOURCE_DIR")
source_dir <- normalizePath(args[[1]])
script_dir <- dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(), value = TRUE))))
out_dir <- file.path(script_dir, "..", "tests", "data", "clinical_significance")

shim <- packageVersion("dplyr") < "1.1.0"
build_dir <- file.path(tempdir(), "clinicalsignificance")
dir.create(build_dir)
invisible(file.copy(list.files(source_dir, full.names = TRUE), build_dir, recursive = TRUE))
if (shim) {
  for (f in file.path(build_dir, "R", c("create_summary_table.R", "cs_get_augmented_data.R"))) {
    code <- readLines(f)
    code <- gsub('dplyr::join_by("id")', '"id"', code, fixed = TRUE)
    code <- gsub(".by = tidyr::all_of(group_var)", '.groups = "drop"', code, fixed = TRUE)
    writeLines(code, f)
  }
}
lib <- file.path(tempdir(), "lib")
dir.create(lib)
install.packages(build_dir, lib = lib, repos = NULL, type = "source", quiet = TRUE)
library(clinicalsignificance, lib.loc = lib)

claus <- clinicalsignificance::claus_2020[, c("id", "treatment", "time", "bdi", "shaps", "who", "hamd")]
jacobson <- clinicalsignificance::jacobson_1989
write.csv(claus, file.path(out_dir, "claus_2020.csv"), row.names = FALSE)
write.csv(jacobson, file.path(out_dir, "jacobson_1989.csv"), row.names = FALSE)
datasets <- list(claus_2020 = list(data = claus, id = "id"), jacobson_1989 = list(data = jacobson, id = "subject"))

settings <- read.csv(file.path(out_dir, "settings.csv"), stringsAsFactors = FALSE)
methods <- c("JT", "GLN", "HLL", "EN", "NK", "HA")
counts <- list()
clients <- list()
ha_group <- list()

tidy_counts <- function(summary, setting, approach, method) {
  data.frame(
    setting = setting, approach = approach, method = method,
    category = tolower(as.character(summary$category)), n = as.integer(summary$n)
  )
}

for (i in seq_len(nrow(settings))) {
  s <- settings[i, ]
  ds <- datasets[[s$dataset]]
  pre <- if (s$dataset == "claus_2020") as.numeric(s$pre) else s$pre
  post <- if (s$dataset == "claus_2020") as.numeric(s$post) else s$post
  common <- list(
    data = ds$data, id = as.name(ds$id), time = quote(time), outcome = as.name(s$outcome),
    pre = pre, post = post, better_is = s$better_is
  )
  norms <- if (is.na(s$m_functional)) list() else list(m_functional = s$m_functional, sd_functional = s$sd_functional)
  for (m in methods) {
    rel <- list(reliability = s$reliability, reliability_post = s$reliability_post, rci_method = m)
    dist <- do.call(cs_distribution, c(common, rel))
    counts[[length(counts) + 1]] <- tidy_counts(dist$summary_table, s$setting, "distribution", m)
    comb <- do.call(cs_combined, c(common, rel, norms, list(cutoff_type = s$cutoff_type)))
    counts[[length(counts) + 1]] <- tidy_counts(
      comb$summary_table$individual_level_summary, s$setting, "combined", m
    )
    aug <- cs_get_augmented_data(comb)
    clients[[length(clients) + 1]] <- data.frame(
      setting = s$setting, method = m, id = aug$id,
      rci = sprintf("%.12g", aug$rci), category = tolower(as.character(aug$category))
    )
    if (m == "HA") {
      g <- comb$summary_table$group_level_summary
      ha_group[[length(ha_group) + 1]] <- data.frame(
        setting = s$setting, category = tolower(g$category), proportion = sprintf("%.12g", g$percent)
      )
    }
  }
  for (cm in c("JT", "HA")) {
    extra <- if (cm == "HA") list(reliability = s$reliability) else list()
    stat <- do.call(cs_statistical, c(common, norms, extra, list(cutoff_type = s$cutoff_type, cutoff_method = cm)))
    counts[[length(counts) + 1]] <- tidy_counts(stat$summary_table, s$setting, "statistical", cm)
  }
}

write.csv(do.call(rbind, counts), file.path(out_dir, "expected_counts.csv"), row.names = FALSE)
write.csv(do.call(rbind, clients), file.path(out_dir, "expected_clients.csv"), row.names = FALSE)
write.csv(do.call(rbind, ha_group), file.path(out_dir, "expected_ha_group.csv"), row.names = FALSE)
writeLines(
  c(
    "Reference run of scripts/clinical_significance_reference.R",
    "package: clinicalsignificance 2.1.0.9000, commit 863dc77bddea89d14ff88ee332a334b305e2fe13",
    paste("shim for dplyr < 1.1 applied:", shim),
    paste("R:", R.version.string),
    paste(
      vapply(
        c("dplyr", "tidyr", "purrr", "rlang", "tibble", "cli", "insight"),
        function(p) paste0(p, " ", as.character(packageVersion(p))), ""
      ),
      collapse = ", "
    )
  ),
  file.path(out_dir, "reference_session.txt")
)
