//! Container logs in docker's json-file format: the writer the monitor uses and the reader behind `berth logs`.
