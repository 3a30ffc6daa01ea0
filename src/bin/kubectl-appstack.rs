//! `kubectl-appstack`: the kubectl plugin (`kubectl appstack status|render|psql`). Put it on PATH
//! and kubectl finds it; see the README, "With kubectl".

fn main() -> std::process::ExitCode {
    appstack_operator::plugin::main()
}
