//! A real Kafka-compatible broker for the tests (cargo feature `kafka`):
//! tansu, a broker written in Rust, started as a child process on
//! `127.0.0.1` with its data in a temporary directory (SQLite), so that it
//! can be stopped and started again on the same port with its topics,
//! messages and committed offsets intact.
//!
//! [`Broker::start`] waits until the broker answers a Metadata request;
//! [`Broker::create_topic`] creates a topic with `tansu topic create`.
//! The binary is `WEIR_TEST_TANSU`, else `tansu` on the `PATH`;
//! `scripts/test` installs it and sets the variable. Without it the tests
//! fail, saying so: they never pass by skipping.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a starting broker may take to answer.
const READY: Duration = Duration::from_secs(30);

/// The tansu binary: `WEIR_TEST_TANSU`, else `tansu` on the `PATH`; panics
/// with what to do when there is neither.
pub fn tansu() -> PathBuf {
    if let Some(path) = std::env::var_os("WEIR_TEST_TANSU") {
        return path.into();
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("tansu"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "the Kafka tests need the tansu broker: run the suite with `scripts/test`, \
             which installs it and sets WEIR_TEST_TANSU, or set WEIR_TEST_TANSU to its binary"
        )
    })
}

/// A tansu broker on `127.0.0.1`, killed (and its directory removed) on
/// drop.
pub struct Broker {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    starts: u32,
}

impl Broker {
    /// Starts a broker on a free port with an empty SQLite store in a
    /// fresh directory, and waits until it answers.
    pub fn start() -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut broker = Broker {
            dir,
            port,
            child: None,
            starts: 0,
        };
        broker.restart();
        broker
    }

    /// `127.0.0.1:PORT`, the `brokers` value of a pipeline.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (SIGKILL). Its data stays for [`Broker::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again (stopping it first if it runs) on the same
    /// port with the same data, and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        self.starts += 1;
        let log = std::fs::File::create(self.dir.path().join(format!("tansu-{}.log", self.starts)))
            .expect("broker log");
        let url = format!("tcp://{}", self.address());
        let child = Command::new(tansu())
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("broker log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("tansu ({}) does not start: {e}", tansu().display()));
        self.child = Some(child);
        let deadline = Instant::now() + READY;
        let mut correlation = 0;
        loop {
            correlation += 1;
            match metadata(&self.address(), correlation) {
                Ok(()) => return,
                Err(e) => {
                    if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                        panic!("tansu exited ({status}) on start:\n{}", self.log());
                    }
                    assert!(
                        Instant::now() < deadline,
                        "tansu did not answer a Metadata request within {READY:?} ({e}):\n{}",
                        self.log()
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// Creates `name` with `partitions` partitions.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(tansu())
            .args(["topic", "create", "--broker"])
            .arg(format!("tcp://{}", self.address()))
            .args(["--partitions", &partitions.to_string(), name])
            .output()
            .expect("tansu topic create runs");
        assert!(
            out.status.success(),
            "tansu topic create {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Everything the broker logged since it was first started, for
    /// failure messages.
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                std::fs::read_to_string(self.dir.path().join(format!("tansu-{n}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("--- restarted ---\n")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends a Metadata request (v0, all topics) to `address` and checks that
/// the answer names at least one broker.
fn metadata(address: &str, correlation: i32) -> std::io::Result<()> {
    let addr: SocketAddr = address.parse().map_err(std::io::Error::other)?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let client = b"weir-testkit";
    let mut body = Vec::new();
    body.extend_from_slice(&3i16.to_be_bytes()); // api key: Metadata
    body.extend_from_slice(&0i16.to_be_bytes()); // api version
    body.extend_from_slice(&correlation.to_be_bytes());
    body.extend_from_slice(&(client.len() as i16).to_be_bytes());
    body.extend_from_slice(client);
    body.extend_from_slice(&0i32.to_be_bytes()); // topics: none = all
    let mut request = (body.len() as i32).to_be_bytes().to_vec();
    request.extend_from_slice(&body);
    stream.write_all(&request)?;
    let mut head = [0u8; 12]; // size, correlation id, broker count
    stream.read_exact(&mut head)?;
    let answered = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    let brokers = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
    if answered != correlation || brokers < 1 {
        return Err(std::io::Error::other(format!(
            "unexpected Metadata answer: correlation id {answered}, {brokers} brokers"
        )));
    }
    Ok(())
}
