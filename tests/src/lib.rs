//! Test harness for multi-process tests.
