//! A real node for tests: `fedwatt serve` started as a process on a free
//! loopback port, with its own data directory, on SQLite or on a fresh
//! database of the PostgreSQL server that scripts/postgres starts.

#![allow(dead_code)] // each test file uses part of this

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where a node keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends to test on: SQLite always; PostgreSQL when
/// POSTGRES_TEST_URL names a server (scripts/test starts one). In
/// CI a missing server is a failure, not a skip.
pub fn backends() -> Vec<Backend> {
    if std::env::var("POSTGRES_TEST_URL").is_ok() {
        return vec![Backend::Sqlite, Backend::Postgres];
    }
    assert!(
        std::env::var("CI").is_err(),
        "POSTGRES_TEST_URL is not set: run the tests with scripts/test, which starts PostgreSQL"
    );
    eprintln!("!!! PostgreSQL tests SKIPPED: POSTGRES_TEST_URL is not set (scripts/test sets it)");
    vec![Backend::Sqlite]
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty place for a node's data.
pub struct Place {
    pub backend: Backend,
    pub dir: PathBuf,
    pub database_url: Option<String>,
}

impl Place {
    pub fn new(backend: Backend) -> Place {
        let unique = format!(
            "{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("fedwatt-test-{unique}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let admin = std::env::var("POSTGRES_TEST_URL").unwrap();
                let name = format!("fedwatt_test_{unique}");
                let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
                    .unwrap();
                client
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .unwrap();
                let base = admin.rsplit_once('/').unwrap().0;
                Some(format!("{base}/{name}"))
            }
        };
        Place {
            backend,
            dir,
            database_url,
        }
    }

    /// A `fedwatt` command acting on this place.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fedwatt"));
        command.arg("--data-dir").arg(&self.dir);
        for (key, _) in
            std::env::vars().filter(|(k, _)| k.starts_with("FEDWATT_") && k != "FEDWATT_LOG")
        {
            command.env_remove(key);
        }
        if let Some(url) = &self.database_url {
            command.env("FEDWATT_DATABASE_URL", url);
        }
        command
    }

    /// Runs a `fedwatt` command here and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Creates a token.
    pub fn token(&self, name: &str, scope: &str, streams: &str) -> String {
        let out = self.run(&[
            "token",
            "create",
            "--name",
            name,
            "--scope",
            scope,
            "--streams",
            streams,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Starts a node here.
    pub fn serve(&self, env: &[(&str, &str)]) -> Node {
        self.serve_with(&[], env)
    }

    /// Starts a node here, with more arguments to `fedwatt serve`.
    pub fn serve_with(&self, args: &[&str], env: &[(&str, &str)]) -> Node {
        let mut serve = vec!["serve", "--listen", "127.0.0.1:0"];
        serve.extend_from_slice(args);
        self.start(&serve, env)
    }

    /// Runs `fedwatt ARGS…` here (a command that serves, on a free port it
    /// logs) and returns once it is listening. Its standard output stays
    /// readable in `Node::stdout`.
    pub fn start(&self, args: &[&str], env: &[(&str, &str)]) -> Node {
        let mut command = self.command();
        command
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut lines = BufReader::new(child.stderr.take().unwrap());
        let mut log = String::new();
        let base = loop {
            let mut line = String::new();
            if lines.read_line(&mut line).unwrap() == 0 {
                panic!("fedwatt {} stopped before listening:\n{log}", args[0]);
            }
            log.push_str(&line);
            if let Some(rest) = line.split("serving ").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches('/')
                    .to_owned();
            }
        };
        // Keep draining the log so that the node never blocks on it; it
        // stays in node.log for whoever investigates a failure.
        let log_path = self.dir.join("node.log");
        std::thread::spawn(move || {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log_path)
                .ok();
            if let Some(f) = file.as_mut() {
                let _ = f.write_all(log.as_bytes());
            }
            let mut line = String::new();
            while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
                if let Some(f) = file.as_mut() {
                    let _ = f.write_all(line.as_bytes());
                }
                line.clear();
            }
        });
        Node {
            child,
            base,
            stdout,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A running node.
pub struct Node {
    pub child: Child,
    pub base: String,
    /// What the command printed on standard output.
    pub stdout: BufReader<ChildStdout>,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut response = response.unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    Answer {
        status: response.status().as_u16(),
        content_type,
        body,
    }
}

impl Node {
    pub fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.get_as(path, token, None)
    }

    pub fn get_as(&self, path: &str, token: Option<&str>, accept: Option<&str>) -> Answer {
        let mut request = agent().get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        answer(request.call())
    }

    pub fn post(&self, path: &str, token: Option<&str>, content_type: &str, body: &[u8]) -> Answer {
        let mut request = agent()
            .post(format!("{}{path}", self.base))
            .header("Content-Type", content_type);
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        answer(request.send(body))
    }

    pub fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        let mut request = agent().delete(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        answer(request.call())
    }

    pub fn put(&self, path: &str, token: Option<&str>, body: &str) -> Answer {
        let mut request = agent()
            .put(format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        answer(request.send(body.as_bytes()))
    }

    pub fn patch(&self, path: &str, token: Option<&str>, body: &str) -> Answer {
        let mut request = agent()
            .patch(format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        answer(request.send(body.as_bytes()))
    }

    /// Posts SenML JSON.
    pub fn post_json(&self, token: &str, pack: &str) -> Answer {
        self.post(
            "/api/v1/data",
            Some(token),
            "application/senml+json",
            pack.as_bytes(),
        )
    }

    /// Sends only the head of a POST announcing `length` bytes, and returns
    /// what the node answers (an early refusal).
    pub fn post_head_only(&self, token: &str, content_type: &str, length: usize) -> String {
        use std::io::Write;
        let address = self.base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        write!(
            stream,
            "POST /api/v1/data HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    }

    /// SIGKILL, no goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port free now (the system's pick), for a server a test
/// starts.
pub fn free_port() -> u16 {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    free.local_addr().unwrap().port()
}

/// URL-encodes a query value.
pub fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
