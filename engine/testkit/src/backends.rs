//! Real backends and peers as child processes on `127.0.0.1`: Debian's
//! Prometheus (remote-write receiver on) and VictoriaMetrics, each with its
//! data in a temporary directory, killed when dropped, and restartable on
//! the same port with the same data (an outage, then the backend back);
//! and Rotel, a Rust OTLP collector, as a peer that receives and exports.
//!
//! The binaries come from `WEIR_TEST_PROMETHEUS` and
//! `WEIR_TEST_VICTORIA_METRICS` (set by `scripts/test`), else from `PATH`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A backend process, killed when dropped.
pub struct Backend {
    program: PathBuf,
    args: Vec<String>,
    ready: &'static str,
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Backend {
    /// Starts `program` with the arguments `args(dir, port)` makes (a fresh
    /// temporary directory, a free port) and waits until `GET ready`
    /// answers 200, at most 60 s.
    pub fn start(
        program: PathBuf,
        args: impl Fn(&Path, u16) -> Vec<String>,
        ready: &'static str,
    ) -> Backend {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut backend = Backend {
            args: args(dir.path(), port),
            program,
            ready,
            port,
            child: None,
            dir,
        };
        backend.start_again();
        backend
    }

    /// Where it answers: `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Kills it (its data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it with SIGTERM and waits for it to exit, so that it writes
    /// out what it holds in memory (a kill loses what a backend took in its
    /// last second or so).
    pub fn shut_down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same data, and waits
    /// until it is ready.
    pub fn start_again(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("log"))
            .expect("log file");
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "{} exited with {status}:\n{}",
                    self.program.display(),
                    self.log()
                );
            }
            if get_status(self.port, self.ready) == Some(200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}{} not ready in 60 s:\n{}",
                self.base(),
                self.ready,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Debian's Prometheus with the remote-write receiver and native
/// histograms; it scrapes nothing.
pub fn prometheus() -> Backend {
    Backend::start(
        binary("WEIR_TEST_PROMETHEUS", "prometheus"),
        |dir, port| {
            let config = dir.join("prometheus.yml");
            std::fs::write(&config, "global:\n  scrape_interval: 1h\n").expect("write config");
            vec![
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", dir.join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--web.enable-remote-write-receiver".to_string(),
                "--enable-feature=native-histograms".to_string(),
            ]
        },
        "/-/ready",
    )
}

/// Debian's VictoriaMetrics; its remote-write endpoint is `/api/v1/write`.
pub fn victoria_metrics() -> Backend {
    Backend::start(
        binary("WEIR_TEST_VICTORIA_METRICS", "victoria-metrics"),
        |dir, port| {
            vec![
                format!("-httpListenAddr=127.0.0.1:{port}"),
                format!("-storageDataPath={}", dir.join("data").display()),
            ]
        },
        "/health",
    )
}

fn binary(variable: &str, name: &str) -> PathBuf {
    std::env::var_os(variable).map_or_else(|| PathBuf::from(name), PathBuf::from)
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind port 0")
        .port()
}

/// The status of `GET path` on the port, if anything answers.
fn get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Rotel (the `rotel` package's `rotel-agent`, a Rust OTLP collector) as a
/// child process, killed when dropped: OTLP/gRPC and OTLP/HTTP receivers on
/// free ports, and the exporter its `args` choose.
pub struct Rotel {
    child: Child,
    /// Its OTLP/gRPC receiver, `127.0.0.1:PORT`.
    pub grpc: String,
    /// Its OTLP/HTTP receiver, `127.0.0.1:PORT`.
    pub http: String,
    log: PathBuf,
}

impl Rotel {
    /// Starts `rotel-agent start` from the `rotel` package of `python`
    /// (the test venv), logging to `log`, with `args` after the receivers'
    /// endpoints (`--exporter otlp --otlp-exporter-endpoint ...`), and
    /// waits until both receivers accept connections.
    pub fn start(python: &str, log: &Path, args: &[&str]) -> Rotel {
        let out = Command::new(python)
            .args([
                "-c",
                "import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))",
            ])
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "the test venv has no `rotel` package: run `scripts/test`"
        );
        let agent = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let grpc = format!("127.0.0.1:{}", free_port());
        let http = format!("127.0.0.1:{}", free_port());
        let file = std::fs::File::create(log).expect("rotel log");
        let child = Command::new(agent)
            .args([
                "start",
                "--otlp-grpc-endpoint",
                &grpc,
                "--otlp-http-endpoint",
                &http,
            ])
            .args(args)
            .stdout(Stdio::from(file.try_clone().expect("rotel log")))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("rotel starts");
        let rotel = Rotel {
            child,
            grpc,
            http,
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&rotel.grpc).is_err() || TcpStream::connect(&rotel.http).is_err() {
            assert!(
                Instant::now() < deadline,
                "rotel did not start listening:\n{}",
                rotel.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        rotel
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
