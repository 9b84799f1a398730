//! Files, gzip files and stdin as chunk sources.
