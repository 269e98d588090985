//! One TUN queue's data path ([`Queue`]): its sending and receiving stages and the readiness
//! queue that both of its threads wait on.

use std::sync::Arc;
use std::time::Duration;

use ferrowg_sys::{Offload, Poller, TunQueue};

use super::placement::{Gathering, Placement};
use super::rx::Receiver;
use super::shared::Shared;
use super::tx::Sender;
use super::{POLL, TUN_TOKEN, UDP_TOKEN};

/// One TUN queue's data path: both stages and the readiness queue their threads share.
pub struct Queue {
    poller: Poller,
    tun: TunQueue,
    sender: Sender,
    receiver: Receiver,
    /// Where the queue's threads run ([`super::placement`]).
    gathering: Gathering,
}

impl Queue {
    /// The data path of `tun`, reading the device's current UDP socket.
    pub fn new(shared: &Arc<Shared>, tun: TunQueue, offload: Offload) -> ferrowg_sys::Result<Self> {
        let sender = Sender::new(shared, &tun);
        let receiver = Receiver::new(shared, &tun, offload);
        let poller = Poller::new()?;
        poller.add(&tun, TUN_TOKEN)?;
        poller.add(&*receiver.socket(), UDP_TOKEN)?;
        Ok(Queue {
            poller,
            tun,
            sender,
            receiver,
            gathering: Gathering::new(),
        })
    }

    /// One data-path thread: takes whichever of TUN queue and socket is readable, empties it,
    /// and arms it again; until the daemon stops.
    pub fn work(&self, shared: &Shared) {
        let mut place = Placement::default();
        while !shared.stopping() {
            let rearmed = match self.poller.wait(Some(POLL)) {
                Ok(Some(TUN_TOKEN)) => {
                    let packets = self.sender.drain(shared, &self.tun);
                    self.gathering.place(&mut place, packets);
                    self.poller.rearm(&self.tun, TUN_TOKEN)
                }
                Ok(Some(_)) => {
                    let drained =
                        self.receiver
                            .drain(shared, &self.poller, &self.tun, &self.sender);
                    self.gathering.place(&mut place, drained.packets);
                    self.poller.rearm(&*drained.sock, UDP_TOKEN)
                }
                Ok(None) => {
                    self.receiver.follow_socket(shared, &self.poller);
                    Ok(())
                }
                Err(e) => Err(e),
            };
            if let Err(e) = rearmed {
                log::warn!("data path: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}
