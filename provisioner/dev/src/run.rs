//! Running the stack: bind every port, start every transport on its listener, say once that the
//! stack is ready, and stop cleanly on Ctrl-C or SIGTERM.
//!
//! Binding comes first and apart ([`bind`]) because what the stack serves depends on where it
//! listens: with port 0 (an ephemeral port, as tests and CI use) only the bound listener knows the
//! port, and the token issuer's URL (`iss`) holds the AWS port. The caller builds its [`Stack`]
//! with [`Bound::ports`], then [`serve`]s. [`run`] does both for a stack built beforehand.
//!
//! One transport failing (a stub, an accept error that ends its loop) is logged on stderr and
//! leaves the others serving: a developer watching Events should not lose it to an IoT bug.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::outputs::Endpoints;
use crate::{Ports, Stack};

/// The ports by their names, as `--ports` spells them, with the per-port flag that sets each.
pub const PORT_NAMES: [(&str, &str); 5] = [
    ("events", "--events-port"),
    ("graphql", "--graphql-port"),
    ("iot_wss", "--iot-wss-port"),
    ("iot_mqtt", "--iot-mqtt-port"),
    ("aws", "--aws-port"),
];

impl Ports {
    /// The port named `name` (`events`, `graphql`, `iot_wss`, `iot_mqtt`, `aws`).
    pub fn get(&self, name: &str) -> Option<u16> {
        Some(match name {
            "events" => self.events,
            "graphql" => self.graphql,
            "iot_wss" => self.iot_wss,
            "iot_mqtt" => self.iot_mqtt,
            "aws" => self.aws,
            _ => return None,
        })
    }

    /// Sets the port named `name`; `false` for an unknown name.
    pub fn set(&mut self, name: &str, port: u16) -> bool {
        let slot = match name {
            "events" => &mut self.events,
            "graphql" => &mut self.graphql,
            "iot_wss" => &mut self.iot_wss,
            "iot_mqtt" => &mut self.iot_mqtt,
            "aws" => &mut self.aws,
            _ => return false,
        };
        *slot = port;
        true
    }

    /// Applies `--ports events=4510,graphql=0,…` (`iot-wss` is accepted for `iot_wss`). Names
    /// the bad entry and the rule on error.
    pub fn parse_overrides(&mut self, spec: &str) -> Result<(), String> {
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, port) = entry.split_once('=').ok_or_else(|| {
                format!("--ports: {entry:?} is not NAME=PORT (names: {})", names())
            })?;
            let name = name.trim().replace('-', "_");
            let port: u16 = port.trim().parse().map_err(|_| {
                format!("--ports: {entry:?}: the port must be a number from 0 to 65535 (0 = any free port)")
            })?;
            if !self.set(&name, port) {
                return Err(format!(
                    "--ports: {entry:?}: unknown port name {name:?} (names: {})",
                    names()
                ));
            }
        }
        Ok(())
    }
}

fn names() -> String {
    PORT_NAMES.map(|(n, _)| n).join(", ")
}

/// Why the stack could not start listening.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The port is taken by another process.
    #[error(
        "port {port} ({name}) on {listen} is in use by another process: stop it, or choose another port with {flag} PORT or --ports {name}=PORT (0 picks a free one)"
    )]
    PortInUse {
        name: &'static str,
        flag: &'static str,
        port: u16,
        listen: IpAddr,
    },
    /// Any other bind failure (address not on this machine, permission for a port below 1024).
    #[error("cannot listen on {listen}:{port} ({name}, {flag}): {error}")]
    Bind {
        name: &'static str,
        flag: &'static str,
        port: u16,
        listen: IpAddr,
        error: std::io::Error,
    },
    /// Two ports were given the same non-zero number.
    #[error("--ports: {first} and {second} are both {port}; every endpoint needs its own port")]
    Duplicate {
        first: &'static str,
        second: &'static str,
        port: u16,
    },
}

/// Every listener, bound, with the ports they actually have.
#[derive(Debug)]
pub struct Bound {
    pub listen: IpAddr,
    /// The bound ports (port 0 in the request replaced by the port the system chose).
    pub ports: Ports,
    events: TcpListener,
    graphql: TcpListener,
    iot_wss: TcpListener,
    iot_mqtt: TcpListener,
    aws: TcpListener,
}

/// Binds every port on `listen`. A taken port is a [`RunError::PortInUse`] naming it and the
/// flag that changes it; nothing stays bound on error.
pub async fn bind(listen: IpAddr, ports: Ports) -> Result<Bound, RunError> {
    for (i, (a, _)) in PORT_NAMES.iter().enumerate() {
        for (b, _) in &PORT_NAMES[i + 1..] {
            let (pa, pb) = (ports.get(a).unwrap_or(0), ports.get(b).unwrap_or(0));
            if pa != 0 && pa == pb {
                return Err(RunError::Duplicate {
                    first: a,
                    second: b,
                    port: pa,
                });
            }
        }
    }
    let mut listeners = Vec::with_capacity(PORT_NAMES.len());
    for (name, flag) in PORT_NAMES {
        let port = ports.get(name).unwrap_or(0);
        match TcpListener::bind(SocketAddr::new(listen, port)).await {
            Ok(l) => listeners.push(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(RunError::PortInUse {
                    name,
                    flag,
                    port,
                    listen,
                });
            }
            Err(error) => {
                return Err(RunError::Bind {
                    name,
                    flag,
                    port,
                    listen,
                    error,
                });
            }
        }
    }
    let port_of = |l: &TcpListener| l.local_addr().map_or(0, |a| a.port());
    let mut it = listeners.into_iter();
    let (Some(events), Some(graphql), Some(iot_wss), Some(iot_mqtt), Some(aws)) =
        (it.next(), it.next(), it.next(), it.next(), it.next())
    else {
        unreachable!("one listener per entry of PORT_NAMES")
    };
    Ok(Bound {
        listen,
        ports: Ports {
            events: port_of(&events),
            graphql: port_of(&graphql),
            iot_wss: port_of(&iot_wss),
            iot_mqtt: port_of(&iot_mqtt),
            aws: port_of(&aws),
        },
        events,
        graphql,
        iot_wss,
        iot_mqtt,
        aws,
    })
}

/// The running stack: one task per transport.
#[derive(Debug)]
pub struct Running {
    pub listen: IpAddr,
    /// The ports actually bound.
    pub ports: Ports,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

/// Starts every transport of `stack` on its listener of `bound`.
pub fn serve(stack: Arc<Stack>, bound: Bound) -> Running {
    let Bound {
        listen,
        ports,
        events,
        graphql,
        iot_wss,
        iot_mqtt,
        aws,
    } = bound;
    let tasks = vec![
        spawn("events", crate::events::serve(events, stack.clone())),
        spawn("graphql", crate::graphql::serve(graphql, stack.clone())),
        spawn("iot_wss", crate::iot::serve_wss(iot_wss, stack.clone())),
        spawn("iot_mqtt", crate::iot::serve_mqtt(iot_mqtt, stack.clone())),
        spawn("aws", crate::aws::serve(aws, stack)),
    ];
    Running {
        listen,
        ports,
        tasks,
    }
}

/// Binds `ports` on `listen` and serves `stack` there (a stack whose own `ports` may then differ
/// from the bound ones when any was 0: use [`bind`] + [`serve`] when it matters).
pub async fn run(stack: Arc<Stack>, listen: IpAddr, ports: Ports) -> Result<Running, RunError> {
    Ok(serve(stack, bind(listen, ports).await?))
}

/// Runs one transport; its end, error or panic is logged and ends nothing else.
fn spawn<F>(name: &'static str, serve: F) -> (&'static str, JoinHandle<()>)
where
    F: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let handle = tokio::spawn(async move {
        let inner = tokio::spawn(serve);
        match inner.await {
            Ok(Ok(())) => eprintln!("warning: {name} endpoint stopped serving"),
            Ok(Err(e)) => eprintln!("warning: {name} endpoint is not serving: {e}"),
            Err(e) if e.is_panic() => {
                eprintln!("warning: {name} endpoint is not serving: it panicked");
            }
            Err(_) => {}
        }
    });
    (name, handle)
}

impl Running {
    /// The endpoints clients use.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints::new(self.listen, self.ports)
    }

    /// Stops every transport (open connections are dropped) and waits until they are gone.
    pub async fn shutdown(self) {
        for (_, task) in &self.tasks {
            task.abort();
        }
        for (_, task) in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    }

    /// Serves until `signals` reports Ctrl-C (SIGINT) or SIGTERM, then [`Running::shutdown`]s.
    /// Returns the signal's name.
    pub async fn until_signal(self, mut signals: Signals) -> &'static str {
        let signal = signals.recv().await;
        self.shutdown().await;
        signal
    }
}

/// The stop signals, listened for from [`Signals::install`] on: install them *before* saying the
/// stack is ready, or a SIGTERM sent on the ready line would find the default action (death,
/// with no clean exit code).
#[derive(Debug)]
pub struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Starts listening for SIGTERM and SIGINT (Ctrl-C only where there is no SIGTERM).
    pub fn install() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// Waits for the next stop signal; its name.
    pub async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// The one line `provisioner dev` prints on stderr when every port is bound and serving:
/// `groupcast dev ready in 83 ms: events https://…/event, graphql …, iot wss://…/mqtt mqtts://…,
/// aws https://… (CA: …/ca.pem)`. Tests and scripts wait for the `groupcast dev ready` prefix.
pub fn ready_line(endpoints: &Endpoints, ca_path: &std::path::Path, elapsed: Duration) -> String {
    format!(
        "groupcast dev ready in {} ms: events {} {}, graphql {} {}, iot {} {}, aws {} (CA: {})",
        elapsed.as_millis(),
        endpoints.events_url(),
        endpoints.events_realtime_url(),
        endpoints.graphql_url(),
        endpoints.graphql_realtime_url(),
        endpoints.iot_wss_url(),
        endpoints.iot_mqtt_url(),
        endpoints.aws_url(),
        ca_path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn any_ports() -> Ports {
        Ports {
            events: 0,
            graphql: 0,
            iot_wss: 0,
            iot_mqtt: 0,
            aws: 0,
        }
    }

    #[test]
    fn ports_overrides_set_named_ports_and_name_bad_entries() {
        let mut p = Ports::default();
        p.parse_overrides("events=1, iot-wss=0,aws=7").unwrap();
        assert_eq!((p.events, p.iot_wss, p.aws, p.graphql), (1, 0, 7, 4511));
        let e = p.parse_overrides("mqtt=1").unwrap_err();
        assert!(e.contains("unknown port name \"mqtt\""), "{e}");
        let e = p.parse_overrides("events=99999").unwrap_err();
        assert!(e.contains("0 to 65535"), "{e}");
        let e = p.parse_overrides("events").unwrap_err();
        assert!(e.contains("NAME=PORT"), "{e}");
    }

    #[tokio::test]
    async fn port_zero_binds_distinct_ephemeral_ports_and_reports_them() {
        let b = bind(LOCAL, any_ports()).await.unwrap();
        let all = [
            b.ports.events,
            b.ports.graphql,
            b.ports.iot_wss,
            b.ports.iot_mqtt,
            b.ports.aws,
        ];
        assert!(all.iter().all(|p| *p != 0));
        let mut sorted = all.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 5);
        assert_eq!(b.events.local_addr().unwrap().port(), b.ports.events);
    }

    #[tokio::test]
    async fn a_port_in_use_names_the_port_and_the_flag_that_changes_it() {
        let taken = TcpListener::bind((LOCAL, 0)).await.unwrap();
        let port = taken.local_addr().unwrap().port();
        let mut ports = any_ports();
        ports.graphql = port;
        let e = bind(LOCAL, ports).await.unwrap_err().to_string();
        assert!(e.contains(&format!("port {port} (graphql)")), "{e}");
        assert!(
            e.contains("--graphql-port") && e.contains("--ports graphql="),
            "{e}"
        );
    }

    #[tokio::test]
    async fn two_ports_with_one_number_are_refused_before_binding() {
        let mut ports = any_ports();
        ports.events = 4999;
        ports.aws = 4999;
        let e = bind(LOCAL, ports).await.unwrap_err().to_string();
        assert!(e.contains("events and aws are both 4999"), "{e}");
    }

    #[tokio::test]
    async fn a_failing_transport_leaves_the_others_listening() {
        // The transports that are still stubs return an error at once; the stack must keep the
        // task list and stop cleanly anyway.
        let stack = Arc::new(Stack {
            system: Arc::new(crate::system::System::default()),
            auth: crate::auth::Authenticator::fixed(vec![]),
            log: crate::log::DecisionLog::capture().0,
            tls: None,
            state_dir: std::env::temp_dir(),
            ports: any_ports(),
        });
        let running = run(stack, LOCAL, any_ports()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(running.tasks.len(), 5);
        running.shutdown().await;
    }

    #[test]
    fn the_ready_line_lists_every_url_and_the_ca() {
        let e = Endpoints::new(LOCAL, Ports::default());
        let line = ready_line(
            &e,
            std::path::Path::new("/s/ca.pem"),
            Duration::from_millis(42),
        );
        assert!(
            line.starts_with("groupcast dev ready in 42 ms: events https://127.0.0.1:4510/event")
        );
        for url in [
            "wss://127.0.0.1:4512/mqtt",
            "mqtts://127.0.0.1:4513",
            "https://127.0.0.1:4514",
            "/s/ca.pem",
        ] {
            assert!(line.contains(url), "{url} in {line}");
        }
    }
}
