// mimalloc: per-request allocations are many and small and cross threads (HTTP worker →
// campaign actor → database task); glibc's malloc spent a seventh of the claim path's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ecoupon::cli::main()
}
