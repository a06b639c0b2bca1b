//! Integration tests of `rlhf-annotate`: the server over real HTTP on 127.0.0.1, concurrent
//! annotators, a SIGKILL restart, the export, and the page in headless Chromium.

mod browser;
mod concurrency;
mod export;
mod http;
mod restart;
mod support;
