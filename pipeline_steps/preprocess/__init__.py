"""The processing step: validate, quarantine, aggregate point-in-time, split by time, and
write Feature Store records, the monitoring baseline and a report.  See README.md one level up."""
