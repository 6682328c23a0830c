//! The programs of `examples/`, run as tests so that they never rot: each example's `main`
//! records into a SQLite file of its own, reads it back and asserts what it did, so an API
//! change that breaks one fails here by name, and the runner counts each example.
//!
//! The example files are also `[[example]]` targets of this crate (`cargo run --example
//! query`); here they are compiled as modules of this test binary, one binary for all of them.

#[path = "../../../examples/cleanup.rs"]
mod cleanup;
#[path = "../../../examples/context_operation.rs"]
mod context_operation;
#[path = "../../../examples/crud_change_set.rs"]
mod crud_change_set;
#[path = "../../../examples/data_access.rs"]
mod data_access;
#[path = "../../../examples/prompt_invocation.rs"]
mod prompt_invocation;
#[path = "../../../examples/query.rs"]
mod query;
#[path = "../../../examples/resource_access.rs"]
mod resource_access;
#[path = "../../../examples/summary.rs"]
mod summary;
#[path = "../../../examples/tool_execution.rs"]
mod tool_execution;

/// Runs an example's `main`, failing with its error.
fn run(main: fn() -> Result<(), Box<dyn std::error::Error>>) {
    if let Err(error) = main() {
        panic!("the example failed: {error}");
    }
}

#[test]
fn tool_execution_example_records_a_timed_call_and_an_observed_failure() {
    run(tool_execution::main);
}

#[test]
fn resource_access_example_records_reads_and_writes_with_their_lineage() {
    run(resource_access::main);
}

#[test]
fn context_operation_example_records_a_keys_set_get_update_delete() {
    run(context_operation::main);
}

#[test]
fn prompt_invocation_example_records_a_prompt_inside_a_session() {
    run(prompt_invocation::main);
}

#[test]
fn crud_change_set_example_computes_change_sets_and_flags_for_review() {
    run(crud_change_set::main);
}

#[test]
fn data_access_example_finds_and_erases_a_subjects_records_and_still_verifies() {
    run(data_access::main);
}

#[test]
fn query_example_filters_counts_and_pages_with_a_cursor() {
    run(query::main);
}

#[test]
fn summary_example_summarises_a_session_and_its_tools() {
    run(summary::main);
}

#[test]
fn cleanup_example_deletes_only_what_has_expired() {
    run(cleanup::main);
}
