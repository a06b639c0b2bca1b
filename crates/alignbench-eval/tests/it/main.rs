//! Integration tests of rlhf-alignbench-eval (one test binary; see STYLE.md).

mod answers;
mod common;
mod data;
mod generate;
mod http;
mod offline;
mod pairwise;
mod pairwise_llm;
mod parse;
mod prompt;
mod report;
mod score;
mod tidy;
