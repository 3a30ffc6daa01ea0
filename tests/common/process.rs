//! The operator as real processes (the built binary), so that SIGKILL and SIGTERM are real: each
//! runs under the ServiceAccount of `deploy/install.yaml` (a kubeconfig that impersonates it),
//! elects a leader on the Lease `appstack-system/appstack-operator`, and serves /readyz and
//! /metrics on a port of its own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};

use super::{OPERATOR_GROUPS, OPERATOR_USER, kubeconfig, repo};

pub const LEASE_NAMESPACE: &str = "appstack-system";
pub const LEASE_NAME: &str = "appstack-operator";

/// A kubeconfig like the test cluster's, whose user impersonates the operator's ServiceAccount.
pub fn operator_kubeconfig() -> PathBuf {
    let text = std::fs::read_to_string(kubeconfig()).expect("kubeconfig readable");
    let mut config: serde_json::Value = serde_saphyr::from_str(&text).expect("kubeconfig parses");
    for user in config["users"].as_array_mut().expect("kubeconfig users") {
        user["user"]["as"] = OPERATOR_USER.into();
        user["user"]["as-groups"] = OPERATOR_GROUPS.to_vec().into();
    }
    let dir = repo().join("target/process-tests");
    std::fs::create_dir_all(&dir).expect("target/process-tests");
    // One file per test process: two suites at once (on two control planes) must not restart
    // each other's operators against the wrong API server.
    let path = dir.join(format!("operator-{}.kubeconfig", std::process::id()));
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).expect("kubeconfig written");
    path
}

/// One operator process.
pub struct Operator {
    pub identity: String,
    pub address: SocketAddr,
    pub log: PathBuf,
    /// `--lease-duration-seconds`; the shipped default when `None`.
    lease_seconds: Option<u64>,
    child: Option<Child>,
}

impl Operator {
    /// Start `appstack-operator run` as `identity`, watching `namespace` (every namespace when
    /// `None`), logging to `target/process-tests/<identity>.log` (appended).
    pub fn start(identity: &str, namespace: Option<&str>, kubeconfig: &Path) -> Self {
        Self::start_with_lease(identity, namespace, kubeconfig, None)
    }

    /// [`Operator::start`] with a Lease of `lease_seconds` instead of the shipped default.
    pub fn start_with_lease(
        identity: &str,
        namespace: Option<&str>,
        kubeconfig: &Path,
        lease_seconds: Option<u64>,
    ) -> Self {
        let address = free_address();
        let log = repo().join(format!("target/process-tests/{identity}.log"));
        let mut operator = Self {
            identity: identity.to_owned(),
            address,
            log,
            lease_seconds,
            child: None,
        };
        operator.spawn(namespace, kubeconfig);
        operator
    }

    /// Start it again (same identity and port), as kubelet restarts a container in its pod.
    pub fn spawn(&mut self, namespace: Option<&str>, kubeconfig: &Path) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("operator log");
        // `APPSTACK_OPERATOR_BIN` runs another build of it (the release binary, for long runs).
        let binary = std::env::var_os("APPSTACK_OPERATOR_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_appstack-operator").into());
        let mut command = Command::new(binary);
        command
            .arg("run")
            .arg(format!("--instance={}", self.identity))
            .arg(format!("--metrics-address={}", self.address))
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAMESPACE", LEASE_NAMESPACE)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if let Some(namespace) = namespace {
            command.arg(format!("--namespace={namespace}"));
        }
        if let Some(seconds) = self.lease_seconds {
            command.arg(format!("--lease-duration-seconds={seconds}"));
        }
        self.child = Some(command.spawn().expect("operator binary starts"));
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM; the process is still ours to wait for.
    pub fn terminate(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    /// Wait up to `timeout` for the process to exit; its exit status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The exit status, if the process has exited by itself (it is then reaped).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(status)
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// `/readyz`: (status code, body).
    pub fn readyz(&self) -> Option<(u16, String)> {
        http_get(self.address, "/readyz")
    }

    /// The value of `appstack_leader` on `/metrics`.
    pub fn leader_gauge(&self) -> Option<i64> {
        let (_, body) = http_get(self.address, "/metrics")?;
        body.lines()
            .find_map(|line| line.strip_prefix("appstack_leader "))
            .and_then(|value| value.trim().parse().ok())
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The Lease's holder, as the admin sees it.
pub async fn lease_holder(client: &Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let lease = leases.get_opt(LEASE_NAME).await.ok()??;
    lease
        .spec?
        .holder_identity
        .filter(|holder| !holder.is_empty())
}

/// Poll every 50 ms until the Lease is held by `identity`; how long that took.
pub async fn wait_for_holder(
    client: &Client,
    identity: &str,
    timeout: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if lease_holder(client).await.as_deref() == Some(identity) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

fn free_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

/// A bare HTTP/1.0 GET on loopback: (status code, body).
fn http_get(address: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((code, body))
}
