//! The tokio wrapper the daemons use.
//!
//! Receiving waits on the endpoint's epoll descriptor through [`tokio::io::unix::AsyncFd`]
//! (the epoll set becomes readable when any connection or the listener is); sending is the
//! blocking endpoint's send, which never waits anyway, so it needs no `.await`.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use crate::endpoint::{Endpoint, EndpointOptions, Event, SendReport, StateAnswer, Stats};
use crate::error::Result;
use crate::message::{Message, StateItem};

/// The endpoint's epoll fd for registration with tokio. Holding the endpoint keeps the fd
/// open for as long as tokio has it registered.
#[derive(Debug)]
struct ReadinessFd(Arc<Endpoint>);

impl AsRawFd for ReadinessFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.readiness_fd()
    }
}

/// An [`Endpoint`] for tokio. Must be created inside a runtime with IO enabled.
#[derive(Debug)]
pub struct AsyncEndpoint {
    readiness: AsyncFd<ReadinessFd>,
    inner: Arc<Endpoint>,
}

impl AsyncEndpoint {
    /// Opens an endpoint (see [`Endpoint::open`]).
    pub fn open(
        bus_dir: impl AsRef<std::path::Path>,
        name: &str,
        opts: EndpointOptions,
    ) -> Result<Self> {
        Self::new(Endpoint::open(bus_dir, name, opts)?)
    }

    /// Wraps an open endpoint.
    pub fn new(inner: Endpoint) -> Result<Self> {
        let inner = Arc::new(inner);
        // SAFETY: the fd is the endpoint's epoll fd; `ReadinessFd` holds the endpoint, so
        // the fd stays open and is never replaced while registered.
        let readiness = unsafe {
            AsyncFd::register_with_interest(
                ReadinessFd(Arc::clone(&inner)),
                tokio::io::Interest::READABLE,
            )
        }
        .map_err(|e| e.into_parts().1)?;
        Ok(AsyncEndpoint { readiness, inner })
    }

    /// The blocking endpoint underneath (for `stats`, `send` from other threads...).
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.inner
    }

    /// Sends to every peer; never waits (see [`Endpoint::send`]).
    pub fn send(&self, msg: &Message) -> Result<SendReport> {
        self.inner.send(msg)
    }

    /// Sends `msgs` in order, as few datagrams as fit; never waits (see
    /// [`Endpoint::send_batch`]).
    pub fn send_batch(&self, msgs: &[Message]) -> Result<SendReport> {
        self.inner.send_batch(msgs)
    }

    /// The next event: a message or a skipped (counted) frame. Cancel-safe: a message is
    /// only taken from the socket in the synchronous part, so using this in
    /// `tokio::select!` loses nothing.
    pub async fn recv_event(&self) -> Result<Event> {
        loop {
            if let Some(ev) = self.inner.try_recv_event()? {
                return Ok(ev);
            }
            let mut guard = self.readiness.readable().await?;
            match self.inner.try_recv_event()? {
                Some(ev) => return Ok(ev),
                // Nothing after all: clear, and tokio re-arms on the next edge.
                None => guard.clear_ready(),
            }
        }
    }

    /// The next valid message.
    pub async fn recv(&self) -> Result<Message> {
        loop {
            if let Event::Message(m) = self.recv_event().await? {
                return Ok(m);
            }
        }
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Answers a state request (see [`Endpoint::reply_state`]).
    pub fn reply_state(&self, request: &Message, items: Vec<StateItem>, errno: u32) -> Result<()> {
        self.inner.reply_state(request, items, errno)
    }

    /// Asks the owners for their state (see [`Endpoint::request_state`]). Messages that
    /// arrive meanwhile and are not part of the answer are in [`StateAnswer::other`].
    pub async fn request_state(
        &self,
        timeout: Duration,
        expect_owners: Option<usize>,
    ) -> Result<StateAnswer> {
        let mut answer = self.inner.send_state_request()?;
        let deadline = tokio::time::Instant::now() + timeout;
        while !answer.done(expect_owners) {
            match tokio::time::timeout_at(deadline, self.recv()).await {
                Ok(msg) => answer.absorb(msg?),
                Err(_elapsed) => break,
            }
        }
        Ok(answer)
    }

    /// Like [`AsyncEndpoint::request_state`], done once an endpoint named one of `senders`
    /// has answered completely: the others on the bus (babymdd beside mrd, nemonetd)
    /// answer too, and whoever is quickest must not end the wait for the one that matters.
    pub async fn request_state_from(
        &self,
        timeout: Duration,
        senders: &[&str],
    ) -> Result<StateAnswer> {
        let mut answer = self.inner.send_state_request()?;
        let deadline = tokio::time::Instant::now() + timeout;
        while !answer.complete_from(senders) {
            match tokio::time::timeout_at(deadline, self.recv()).await {
                Ok(msg) => answer.absorb(msg?),
                Err(_elapsed) => break,
            }
        }
        Ok(answer)
    }
}
