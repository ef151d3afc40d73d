//! Headless Chromium through the system's chromedriver (Debian's
//! `chromium` and `chromium-driver`), driven over WebDriver with
//! fantoccini. Nothing is downloaded: the browser is the installed one.
//! Shared by the browser tests and the render benchmark.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// The chromedriver to run: `$TRACEWIRE_CHROMEDRIVER`, else Debian's.
fn chromedriver() -> PathBuf {
    std::env::var_os("TRACEWIRE_CHROMEDRIVER")
        .map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from)
}

/// A chromedriver process and one headless Chromium session in it; the
/// process is killed when this is dropped.
pub(crate) struct Browser {
    pub(crate) client: Client,
    _driver: tokio::process::Child,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session
    /// with a 1400×1000 window.
    pub(crate) async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = tokio::process::Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e} (apt-get install chromium chromium-driver)",
                    chromedriver().display()
                )
            });
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--force-device-scale-factor=1",
            ] }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Browser {
            client,
            _driver: driver,
        }
    }

    /// Saves a screenshot of the page as `web-screenshots/NAME.png` under
    /// the target directory's test scratch directory; returns its path.
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot is written");
        path
    }

    /// Ends the session (the driver is killed on drop).
    pub(crate) async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// Where screenshots go: `$CARGO_TARGET_TMPDIR/web-screenshots` in tests,
/// the temporary directory otherwise.
pub(crate) fn screenshot_dir() -> PathBuf {
    option_env!("CARGO_TARGET_TMPDIR")
        .map_or_else(std::env::temp_dir, PathBuf::from)
        .join("web-screenshots")
}
