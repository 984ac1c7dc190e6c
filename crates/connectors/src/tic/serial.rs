//! The bytes of a TIC connector: a serial port set to 7E1 with termios,
//! or a capture file, each read on a thread of its own into a bounded
//! channel.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::termios::{
    ControlModes, InputModes, OptionalActions, SpecialCodeIndex, tcgetattr, tcsetattr,
};
use tokio::sync::mpsc;

/// What a reading thread sends: bytes, or why it stopped.
pub(super) type Chunk = Result<Vec<u8>, String>;

/// Chunks in flight between a reading thread and the decoder.
pub(super) const CHUNKS: usize = 16;

/// Reads `port` on a thread of its own at the baud rate `baud` says
/// (changed on the fly when the decoder asks, without reopening, so that
/// no byte is lost between the two), until the receiver is gone (looked
/// at each second of silence) or the port fails (sent as an error).
pub(super) fn read_port(port: PathBuf, baud: Arc<AtomicU32>) -> mpsc::Receiver<Chunk> {
    let (tx, rx) = mpsc::channel(CHUNKS);
    std::thread::spawn(move || {
        if let Err(e) = pump_port(&port, &baud, &tx) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

fn pump_port(port: &Path, baud: &AtomicU32, tx: &mpsc::Sender<Chunk>) -> Result<(), String> {
    let fd = rustix::fs::open(
        port,
        OFlags::RDONLY | OFlags::NOCTTY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open {}: {e}", port.display()))?;
    let mut at = baud.load(Ordering::Relaxed);
    configure(&fd, at).map_err(|e| format!("{} is not a serial port: {e}", port.display()))?;
    // Opened without waiting for a carrier; reads block from now on (up
    // to VTIME).
    rustix::fs::fcntl_setfl(&fd, OFlags::empty()).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    loop {
        let wanted = baud.load(Ordering::Relaxed);
        if wanted != at {
            configure(&fd, wanted).map_err(|e| format!("setting {wanted} baud: {e}"))?;
            at = wanted;
        }
        match rustix::io::read(&fd, &mut buf) {
            Ok(0) if tx.is_closed() => return Ok(()),
            Ok(0) => {}
            Ok(n) => {
                if tx.blocking_send(Ok(buf[..n].to_vec())).is_err() {
                    return Ok(());
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(format!("reading {}: {e}", port.display())),
        }
    }
}

/// 7 data bits, even parity, 1 stop bit at `baud`; raw (no line editing,
/// no CR/LF translation), bytes with a parity or framing error dropped
/// (their group's checksum then fails); a read returns what came within a
/// second, or nothing.
fn configure(fd: &OwnedFd, baud: u32) -> rustix::io::Result<()> {
    let mut t = tcgetattr(fd)?;
    t.make_raw();
    t.control_modes
        .remove(ControlModes::CSIZE | ControlModes::PARODD | ControlModes::CSTOPB);
    t.control_modes.insert(
        ControlModes::CS7 | ControlModes::PARENB | ControlModes::CREAD | ControlModes::CLOCAL,
    );
    t.input_modes.insert(InputModes::INPCK | InputModes::IGNPAR);
    t.special_codes[SpecialCodeIndex::VMIN] = 0;
    t.special_codes[SpecialCodeIndex::VTIME] = 10;
    t.set_speed(baud)?;
    tcsetattr(fd, OptionalActions::Now, &t)
}

/// Reads `file` on a thread of its own, in chunks, until its end (the
/// channel then closes) or the receiver is gone.
pub(super) fn read_file(file: PathBuf) -> mpsc::Receiver<Chunk> {
    let (tx, rx) = mpsc::channel(CHUNKS);
    std::thread::spawn(move || {
        let mut f = match std::fs::File::open(&file) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(format!("cannot open {}: {e}", file.display())));
                return;
            }
        };
        let mut buf = vec![0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx.blocking_send(Ok(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(format!("reading {}: {e}", file.display())));
                    return;
                }
            }
        }
    });
    rx
}
