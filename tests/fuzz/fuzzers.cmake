# One line per parser of outside input: tests/fuzz/fuzz_<name>.c, corpus in
# tests/fuzz/corpus/<name>/.
xrayd_fuzz_target(framing LIBS xrayd_ingest)
xrayd_fuzz_target(scan LIBS xrayd_segment PkgConfig::JANSSON)
xrayd_fuzz_target(config LIBS xrayd_config)
xrayd_fuzz_target(profile LIBS xrayd_aws)
xrayd_fuzz_target(http_request LIBS xrayd_http)
xrayd_fuzz_target(xray_response LIBS xrayd_upstream)
xrayd_fuzz_target(sts LIBS xrayd_aws)
xrayd_fuzz_target(proxy LIBS xrayd_http)
xrayd_fuzz_target(spool LIBS xrayd_upstream)
xrayd_fuzz_target(sampling_rules LIBS xray_sampling)
xrayd_fuzz_target(sampling_stats LIBS xray_sampling)
