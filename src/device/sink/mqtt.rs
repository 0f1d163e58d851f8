//! The MQTT output for monitoring and home automation (rumqttc): status with a last will, per-frame
//! detections, track events, retained lane occupancy, periodic stats and Home Assistant discovery,
//! re-sent on every reconnect. A broker that is away is retried with back-off while a bounded buffer
//! holds what is published meanwhile; when it is full, new messages are dropped and counted.

use crate::util::setting::SettingError;
use super::Sink;
use crate::device::backoff::Backoff;
use crate::device::report::{FrameReport, Health, Metrics, Stats};
use crate::pipeline::track::EventKind;
use crate::device::zones::{Switch, ZoneControl};
use rumqttc::{Client, ClientError, Event, LastWill, MqttOptions, Outgoing, Packet, QoS};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectionsMode {
    /// Every processed frame.
    #[default]
    All,
    /// Only frames with swimmers, and the first empty one after them.
    Changes,
    /// Nothing on `detections`.
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    /// Defaults to `poolwatch-<camera>`.
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Connect with TLS (builds with the `tls` feature).
    pub tls: bool,
    /// PEM file of the CA that signed the broker's certificate (required with `tls`).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for brokers that want one.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Topics go under `<topic_prefix>/<camera>/`.
    pub topic_prefix: String,
    pub keep_alive_s: u64,
    /// Messages held while the broker is away.
    pub buffer: usize,
    /// Seconds between `stats` messages.
    pub stats_interval_s: f64,
    pub detections: DetectionsMode,
    /// At most one `update` event per swimmer this often, in seconds (new and end are always sent).
    pub update_interval_s: f64,
    /// Home Assistant MQTT discovery.
    pub discovery: bool,
    pub discovery_prefix: String,
}

impl Default for MqttSettings {
    fn default() -> Self {
        MqttSettings {
            host: "localhost".into(),
            port: 1883,
            client_id: None,
            username: None,
            password: None,
            tls: false,
            ca_file: None,
            client_cert: None,
            client_key: None,
            topic_prefix: "poolwatch".into(),
            keep_alive_s: 30,
            buffer: 1000,
            stats_interval_s: 10.0,
            detections: DetectionsMode::All,
            update_interval_s: 1.0,
            discovery: true,
            discovery_prefix: "homeassistant".into(),
        }
    }
}

impl MqttSettings {
    /// Every key in its range (keys as the `[mqtt]` section names them).
    pub fn validate(&self) -> Result<(), SettingError> {
        let bad = |k: &str, m: String| Err(SettingError::new(k, m));
        if self.host.trim().is_empty() {
            return bad("host", "is empty".into());
        }
        if self.port == 0 {
            return bad("port", "must be 1..=65535".into());
        }
        if !(5..=3600).contains(&self.keep_alive_s) {
            return bad("keep_alive_s", format!("{} must be in 5..=3600", self.keep_alive_s));
        }
        if !(10..=1_000_000).contains(&self.buffer) {
            return bad("buffer", format!("{} must be in 10..=1000000", self.buffer));
        }
        if !(self.stats_interval_s >= 0.5 && self.stats_interval_s <= 86_400.0) {
            return bad("stats_interval_s", format!("{} must be in [0.5, 86400]", self.stats_interval_s));
        }
        if !(0.0..=3600.0).contains(&self.update_interval_s) {
            return bad("update_interval_s", format!("{} must be in [0, 3600]", self.update_interval_s));
        }
        if self.password.is_some() && self.username.is_none() {
            return bad("password", "needs `username` too".into());
        }
        let topic_ok = |t: &str| !t.is_empty() && !t.contains(['+', '#', '\0']) && !t.starts_with('/') && !t.ends_with('/');
        if !topic_ok(&self.topic_prefix) {
            return bad("topic_prefix", format!("{:?} is not a valid topic prefix (no + # or outer /)", self.topic_prefix));
        }
        if !topic_ok(&self.discovery_prefix) {
            return bad("discovery_prefix", format!("{:?} is not a valid topic prefix", self.discovery_prefix));
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return bad("client_cert", "client_cert and client_key go together".into());
        }
        if self.tls {
            if !cfg!(feature = "tls") {
                return bad("tls", "this build has no TLS support: rebuild with `--features tls`".into());
            }
            if self.ca_file.is_none() {
                return bad("ca_file", "is required with tls = true (PEM file of the broker's CA)".into());
            }
        } else if self.ca_file.is_some() || self.client_cert.is_some() {
            return bad("tls", "ca_file/client_cert are set but tls = false".into());
        }
        Ok(())
    }
}

/// Topic names of one camera.
#[derive(Clone, Debug)]
pub struct Topics {
    pub base: String,
}

impl Topics {
    pub fn new(prefix: &str, camera: &str) -> Topics {
        Topics { base: format!("{prefix}/{camera}") }
    }
    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }
    pub fn detections(&self) -> String {
        format!("{}/detections", self.base)
    }
    pub fn events(&self) -> String {
        format!("{}/events", self.base)
    }
    pub fn lanes(&self) -> String {
        format!("{}/lanes", self.base)
    }
    pub fn stats(&self) -> String {
        format!("{}/stats", self.base)
    }
    /// Every length completed (lap timing).
    pub fn laps(&self) -> String {
        format!("{}/laps", self.base)
    }
    /// The last length of one lane (retained).
    pub fn lane_laps(&self, lane: u32) -> String {
        format!("{}/laps/{lane}", self.base)
    }
    /// The motionless-swimmer state (retained): the highest level raised and each warning or alarm.
    pub fn alarm(&self) -> String {
        format!("{}/alarm", self.base)
    }
    /// An alarm zone's state (retained): on, or off until when.
    pub fn zone(&self, zone: &str) -> String {
        format!("{}/zones/{zone}", self.base)
    }
    /// Where staff switch zones: `<base>/zones/<zone>/set` with `on`, `off` or minutes.
    pub fn zone_set_filter(&self) -> String {
        format!("{}/zones/+/set", self.base)
    }
    /// The zone a `set` topic names.
    pub fn zone_of_set<'a>(&self, topic: &'a str) -> Option<&'a str> {
        topic.strip_prefix(&self.base)?.strip_prefix("/zones/")?.strip_suffix("/set").filter(|z| !z.contains('/'))
    }
}

/// Home Assistant discovery messages (topic, retained JSON payload): a swimmer-count sensor, per lane a
/// binary occupancy sensor and a sensor of the lengths swum, and the motionless-swimmer alarm (a safety
/// binary sensor, on while an alarm is raised; the warnings and places as its attributes).
pub fn discovery_messages(s: &MqttSettings, camera: &str, lanes: u32) -> Vec<(String, String)> {
    let t = Topics::new(&s.topic_prefix, camera);
    let node = format!("poolwatch_{}", camera.replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
    let device = json!({
        "identifiers": [node],
        "name": format!("poolwatch {camera}"),
        "manufacturer": "poolwatch",
        "model": "swimmer detector",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    let mut out = vec![(
        format!("{}/sensor/{node}/swimmers/config", s.discovery_prefix),
        json!({
            "name": "Swimmers",
            "unique_id": format!("{node}_swimmers"),
            "state_topic": t.lanes(),
            "value_template": "{{ value_json.swimmers }}",
            "state_class": "measurement",
            "icon": "mdi:swim",
            "availability_topic": t.status(),
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        })
        .to_string(),
    )];
    for lane in 1..=lanes {
        out.push((
            format!("{}/binary_sensor/{node}/lane{lane}/config", s.discovery_prefix),
            json!({
                "name": format!("Lane {lane} occupied"),
                "unique_id": format!("{node}_lane{lane}"),
                "state_topic": t.lanes(),
                "value_template": format!("{{{{ 'ON' if value_json.lanes[{}] > 0 else 'OFF' }}}}", lane - 1),
                "device_class": "occupancy",
                "availability_topic": t.status(),
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": device,
            })
            .to_string(),
        ));
        out.push((
            format!("{}/sensor/{node}/lane{lane}_laps/config", s.discovery_prefix),
            json!({
                "name": format!("Lane {lane} laps"),
                "unique_id": format!("{node}_lane{lane}_laps"),
                "state_topic": t.lane_laps(lane),
                "value_template": "{{ value_json.lap }}",
                "state_class": "measurement",
                "icon": "mdi:counter",
                "availability_topic": t.status(),
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": device,
            })
            .to_string(),
        ));
    }
    out.push((
        format!("{}/binary_sensor/{node}/alarm/config", s.discovery_prefix),
        json!({
            "name": "Motionless swimmer",
            "unique_id": format!("{node}_alarm"),
            "state_topic": t.alarm(),
            "value_template": "{{ 'ON' if value_json.state == 'alarm' else 'OFF' }}",
            "json_attributes_topic": t.alarm(),
            "device_class": "safety",
            "availability_topic": t.status(),
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        })
        .to_string(),
    ));
    out
}

/// The `alarm` topic's message: the highest level raised now, and each warning or alarm.
pub fn alarm_message(active: &[crate::pipeline::alarm::AlarmEvent], ts: f64) -> String {
    let level = active.iter().map(|a| a.state).max().unwrap_or(crate::pipeline::alarm::Level::Clear);
    json!({"state": level, "alarms": active, "ts": ts}).to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("mqtt: cannot read {path}: {cause}")]
    Read { path: PathBuf, cause: std::io::Error },
}

pub struct MqttSink {
    settings: MqttSettings,
    topics: Topics,
    client: Client,
    metrics: Arc<Metrics>,
    /// The connection thread says when it has finished (after the goodbye on close).
    done: mpsc::Receiver<()>,
    last_stats: Instant,
    /// The pipeline's state in the last stats tick.
    last_state: Option<Health>,
    last_lanes: Option<(usize, Vec<u32>)>,
    last_update: HashMap<u64, Instant>,
    had_swimmers: bool,
    closed: bool,
    /// What goes out again after every (re)connect, first: `online`, discovery, the latest lanes.
    announce: Vec<(String, String)>,
    /// How far the announcement of the current connection got (it resumes where a full request
    /// queue stopped it); `None` once it is all out.
    announced: Option<usize>,
    link: Arc<Link>,
    /// Events (QoS 1) queued since the connection went down; at most half the buffer.
    offline_events: usize,
    /// The latest `lanes` message, announced again after a reconnect.
    lanes_msg: Option<String>,
    /// The latest `alarm` message (clear at start, replacing a stale one a previous run retained),
    /// announced again after a reconnect.
    alarm_msg: String,    zones: Arc<ZoneControl>,
    /// The zones' version last published (`None`: publish them at the next tick), and their names (a
    /// zone removed by a reload has its retained state deleted).
    zones_published: Option<u64>,
    zone_names: Vec<String>,
}

/// The connection's state, kept by the connection thread and read by the sink.
#[derive(Default)]
struct Link {
    connected: AtomicBool,
    /// Set on every ConnAck: the sink announces again before it sends anything else.
    reconnected: AtomicBool,
}

impl MqttSink {
    /// Starts the client; connecting happens in the background and is retried with back-off.
    pub fn start(settings: MqttSettings, camera: &str, lanes: u32, metrics: Arc<Metrics>, zones: Arc<ZoneControl>) -> Result<MqttSink, MqttError> {
        let topics = Topics::new(&settings.topic_prefix, camera);
        let id = settings.client_id.clone().unwrap_or_else(|| format!("poolwatch-{camera}"));
        let mut opts = MqttOptions::new(id, settings.host.clone(), settings.port);
        opts.set_keep_alive(Duration::from_secs(settings.keep_alive_s));
        // A clean session: what was in flight when a connection dropped is sent again by the connection
        // thread below, whatever the broker kept (rumqttc alone drops it without a word unless the
        // broker kept the session, which one restarted without persistence has not: the soak lost an
        // event that way).
        opts.set_clean_session(true);
        opts.set_last_will(LastWill::new(topics.status(), "offline", QoS::AtLeastOnce, true));
        if let Some(u) = &settings.username {
            opts.set_credentials(u.clone(), settings.password.clone().unwrap_or_default());
        }
        if settings.tls {
            configure_tls(&settings, &mut opts)?;
        }
        let mut announce = vec![(topics.status(), "online".to_string())];
        if settings.discovery {
            announce.extend(discovery_messages(&settings, camera, lanes));
        }
        // Room for the announcement (and the lanes, the alarm state and the goodbye) beyond what data may fill.
        let (client, mut connection) = Client::new(opts, settings.buffer + announce.len() + 3);
        let link = Arc::new(Link::default());
        let thread_link = Arc::clone(&link);
        let thread_metrics = Arc::clone(&metrics);
        let max_unsent = settings.buffer.max(16);
        let (done_tx, done) = mpsc::channel();
        let addr = format!("{}:{}", settings.host, settings.port);
        let (thread_zones, thread_topics) = (Arc::clone(&zones), Topics::new(&settings.topic_prefix, camera));
        let spawned = std::thread::Builder::new().name("mqtt".into()).spawn(move || {
            let mut backoff = Backoff::new(Duration::from_secs(30));
            let mut connected = false;
            let mut warned = false;
            // The QoS 1 messages that were in flight or queued when the connection dropped: rumqttc
            // drops them at the next ConnAck unless the broker kept the session, so they are kept here
            // and handed back to it once connected (at least once: a duplicate is possible, a loss not).
            let mut unsent: Vec<rumqttc::Request> = Vec::new();
            // Refused zone switches, logged at a bounded rate (anyone on the broker can send them).
            let mut refusals = crate::device::throttle::Throttle::new(Duration::from_secs(10));
            loop {
                match connection.recv() {
                    Err(_) => break, // every client handle is gone
                    Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                        if unsent.is_empty() {
                            log::info!("mqtt {addr}: connected");
                        } else {
                            log::info!("mqtt {addr}: connected; sending again {} event(s) that were in flight when it dropped", unsent.len());
                        }
                        connection.eventloop.pending.extend(unsent.drain(..));
                        connected = true;
                        warned = false;
                        backoff.reset();
                        // The sink announces (status, discovery, lanes) before anything else: done
                        // there, not here, since this thread is the one that empties the request queue
                        // and cannot wait for room in it.
                        thread_link.reconnected.store(true, Ordering::Relaxed);
                        thread_link.connected.store(true, Ordering::Relaxed);
                        // Staff switch alarm zones here (a clean session: subscribed again each time;
                        // always, as a reload or the set-up page may add zones while connected).
                        let sub = rumqttc::Subscribe::new(thread_topics.zone_set_filter(), QoS::AtLeastOnce);
                        connection.eventloop.pending.push_back(rumqttc::Request::Subscribe(sub));
                    }
                    Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                        if let Some(zone) = thread_topics.zone_of_set(&p.topic) {
                            let asked = String::from_utf8_lossy(&p.payload).chars().take(40).collect::<String>();
                            // A retained switch would switch the zone again at every reconnect, long
                            // after whoever sent it meant it: only live requests count.
                            let done = if p.retain {
                                Err("a retained request is not taken (publish it without retain)".to_string())
                            } else {
                                Switch::parse(&asked).map_err(|e| e.to_string()).and_then(|w| thread_zones.switch(zone, w, thread_zones.now()).map_err(|e| e.to_string()))
                            };
                            match done {
                                Ok(z) => log::warn!("zone {zone}: switched {} over MQTT ({asked:?}){}", z.state, z.remaining_s.map(|r| format!(" for {:.0} min", r / 60.0)).unwrap_or_default()),
                                Err(e) => {
                                    if let Some(more) = refusals.allow() {
                                        log::warn!("mqtt {}: refused: {e}{more}", p.topic.chars().take(120).collect::<String>());
                                    }
                                }
                            }
                        }
                    }
                    Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) => break,
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        // rumqttc has just moved what was in flight and queued into `pending`.
                        // Data (QoS 0) among it is stale by the time the broker is back: dropped, counted.
                        let kept = std::mem::take(&mut connection.eventloop.pending);
                        let (events, data): (Vec<_>, Vec<_>) =
                            kept.into_iter().partition(|r| matches!(r, rumqttc::Request::Publish(p) if p.qos != QoS::AtMostOnce));
                        let data = data.iter().filter(|r| matches!(r, rumqttc::Request::Publish(_))).count();
                        thread_metrics.output_dropped.fetch_add(data as u64, Ordering::Relaxed);
                        let room = 4 * max_unsent;
                        unsent.extend(events);
                        if unsent.len() > room {
                            let lost = unsent.len() - room;
                            unsent.drain(..lost);
                            thread_metrics.output_dropped.fetch_add(lost as u64, Ordering::Relaxed);
                            thread_metrics.events_dropped.fetch_add(lost as u64, Ordering::Relaxed);
                        }
                        let d = backoff.next_delay();
                        if connected || !warned {
                            log::warn!("mqtt {addr}: {e}; reconnecting with back-off");
                            warned = true;
                        } else {
                            log::debug!("mqtt {addr}: {e}; next try in {d:?}");
                        }
                        connected = false;
                        thread_link.connected.store(false, Ordering::Relaxed);
                        std::thread::sleep(d);
                    }
                }
            }
            let _ = done_tx.send(());
        });
        if let Err(e) = spawned {
            log::error!("mqtt: cannot start the connection thread: {e}");
        }
        Ok(MqttSink {
            settings,
            topics,
            client,
            metrics,
            done,
            last_stats: Instant::now(),
            last_state: None,
            last_lanes: None,
            last_update: HashMap::new(),
            had_swimmers: false,
            closed: false,
            announce,
            announced: None,
            link,
            offline_events: 0,
            lanes_msg: None,
            alarm_msg: alarm_message(&[], 0.0),
            zones,
            zones_published: None,
            zone_names: Vec::new(),
        })
    }

    /// Sends what a (re)connection needs first: `online`, discovery, the latest lanes and alarm state
    /// (all retained), resuming where a full queue stopped it. True once all of it is queued.
    fn announced(&mut self) -> bool {
        if self.link.reconnected.swap(false, Ordering::Relaxed) {
            self.announced = Some(0);
            self.offline_events = 0;
            self.zones_published = None;
        }
        // Done for this connection: nothing to build or copy (this runs for every message).
        let Some(mut next) = self.announced else { return true };
        let all = self.announce.len() + usize::from(self.lanes_msg.is_some()) + 1;
        while next < all {
            let (topic, payload) = match (self.announce.get(next), &self.lanes_msg) {
                (Some((t, p)), _) => (t.clone(), p.clone()),
                (None, Some(lanes)) if next == self.announce.len() => (self.topics.lanes(), lanes.clone()),
                (None, _) => (self.topics.alarm(), self.alarm_msg.clone()),
            };
            if self.client.try_publish(topic, QoS::AtLeastOnce, true, payload.into_bytes()).is_err() {
                self.announced = Some(next);
                return false;
            }
            next += 1;
        }
        self.announced = None;
        true
    }

    /// Queues a message. While the broker is away, data (QoS 0) is dropped at once and events
    /// (QoS 1) are kept up to half the buffer; after a reconnect nothing goes out before the
    /// announcement. Every message dropped is counted.
    fn publish(&mut self, topic: String, qos: QoS, retain: bool, payload: String) {
        let connected = self.link.connected.load(Ordering::Relaxed);
        let ready = connected && self.announced();
        let keep = match qos {
            QoS::AtMostOnce => ready,
            _ if ready => true,
            _ if self.offline_events < self.settings.buffer / 2 => {
                self.offline_events += 1;
                true
            }
            _ => false,
        };
        let sent = keep
            && match self.client.try_publish(topic, qos, retain, payload.into_bytes()) {
                Ok(()) => true,
                Err(ClientError::TryRequest(_)) | Err(ClientError::Request(_)) => false,
            };
        if !sent {
            self.metrics.output_dropped.fetch_add(1, Ordering::Relaxed);
            if qos != QoS::AtMostOnce {
                self.metrics.events_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(feature = "tls")]
fn configure_tls(s: &MqttSettings, opts: &mut MqttOptions) -> Result<(), MqttError> {
    let read = |p: &PathBuf| std::fs::read(p).map_err(|cause| MqttError::Read { path: p.clone(), cause });
    // rustls needs a process-wide crypto provider; ring keeps the binary free of aws-lc. A second
    // install (another sink after a reload) is refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = match &s.ca_file {
        Some(p) => read(p)?,
        None => Vec::new(),
    };
    let client_auth = match (&s.client_cert, &s.client_key) {
        (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
        _ => None,
    };
    opts.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Simple { ca, alpn: None, client_auth }));
    Ok(())
}

#[cfg(not(feature = "tls"))]
fn configure_tls(_: &MqttSettings, _: &mut MqttOptions) -> Result<(), MqttError> {
    // Refused by `MqttSettings::validate` before we get here.
    Ok(())
}

impl Sink for MqttSink {
    fn name(&self) -> String {
        format!("mqtt {}:{}", self.settings.host, self.settings.port)
    }

    fn frame(&mut self, r: &FrameReport) {
        let has = !r.swimmers.is_empty();
        let send = match self.settings.detections {
            DetectionsMode::All => true,
            DetectionsMode::Changes => has || self.had_swimmers,
            DetectionsMode::None => false,
        };
        self.had_swimmers = has;
        if send {
            self.publish(self.topics.detections(), QoS::AtMostOnce, false, r.json());
        }
        let now = Instant::now();
        let interval = Duration::from_secs_f64(self.settings.update_interval_s);
        for e in &r.events {
            let id = e.swimmer.track.id;
            match e.event {
                EventKind::Update => {
                    if self.last_update.get(&id).is_some_and(|t| now.duration_since(*t) < interval) {
                        continue;
                    }
                    self.last_update.insert(id, now);
                }
                EventKind::New => {
                    self.last_update.insert(id, now);
                }
                EventKind::End => {
                    self.last_update.remove(&id);
                }
            }
            self.publish(self.topics.events(), QoS::AtLeastOnce, false, serde_json::to_string(e).unwrap_or_default());
        }
        for l in &r.laps {
            let payload = serde_json::to_string(l).unwrap_or_default();
            self.publish(self.topics.laps(), QoS::AtLeastOnce, false, payload.clone());
            self.publish(self.topics.lane_laps(l.lane), QoS::AtLeastOnce, true, payload);
        }
        if !r.alarms.is_empty() {
            self.alarm_msg = alarm_message(&r.alarm_active, r.ts);
            self.publish(self.topics.alarm(), QoS::AtLeastOnce, true, self.alarm_msg.clone());
        }
        let occupancy = (r.swimmers.len(), r.lanes.clone());
        if self.last_lanes.as_ref() != Some(&occupancy) {
            let payload = json!({"swimmers": occupancy.0, "lanes": occupancy.1, "frame": r.seq, "ts": r.ts}).to_string();
            self.lanes_msg = Some(payload.clone());
            self.publish(self.topics.lanes(), QoS::AtLeastOnce, true, payload);
            self.last_lanes = Some(occupancy);
        }
    }

    fn tick(&mut self, stats: &Stats) {
        // The announcement goes out as soon as the broker is back, frames or not.
        if self.link.connected.load(Ordering::Relaxed) {
            self.announced();
        }
        // The zones' states (retained), whenever one is switched or comes back on by itself.
        let version = self.zones.version();
        if self.link.connected.load(Ordering::Relaxed) && self.zones_published != Some(version) {
            self.zones_published = Some(version);
            let states = self.zones.states(self.zones.now());
            let names: Vec<String> = states.iter().map(|z| z.zone.clone()).collect();
            for gone in std::mem::replace(&mut self.zone_names, names).into_iter().filter(|n| !states.iter().any(|z| &z.zone == n)) {
                // An empty retained message deletes the broker's retained state of a zone no longer there.
                self.publish(self.topics.zone(&gone), QoS::AtLeastOnce, true, String::new());
            }
            for z in states {
                self.publish(self.topics.zone(&z.zone), QoS::AtLeastOnce, true, serde_json::to_string(&z).unwrap_or_default());
            }
        }
        // A change of state (failing, stalled, back to ok) goes out at once, not at the next interval.
        let changed = self.last_state.replace(stats.state).is_some_and(|s| s != stats.state);
        if changed || self.last_stats.elapsed().as_secs_f64() >= self.settings.stats_interval_s {
            self.last_stats = Instant::now();
            self.publish(self.topics.stats(), QoS::AtMostOnce, false, serde_json::to_string(stats).unwrap_or_default());
        }
    }

    fn close(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        // `offline` (retained) before the disconnect, so it is not the last will that says it.
        let _ = self.client.try_publish(self.topics.status(), QoS::AtLeastOnce, true, b"offline".to_vec());
        let _ = self.client.try_disconnect();
        if self.done.recv_timeout(Duration::from_secs(3)).is_err() {
            log::warn!("mqtt: the broker did not take the goodbye in time; it will publish the last will");
        }
    }
}

impl Drop for MqttSink {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_has_a_count_sensor_and_per_lane_occupancy_and_laps() {
        let s = MqttSettings::default();
        let msgs = discovery_messages(&s, "main pool", 2);
        assert_eq!(msgs.len(), 6);
        assert_eq!(msgs[0].0, "homeassistant/sensor/poolwatch_main_pool/swimmers/config");
        let v: serde_json::Value = serde_json::from_str(&msgs[0].1).unwrap();
        assert_eq!(v["state_topic"], "poolwatch/main pool/lanes");
        assert_eq!(v["availability_topic"], "poolwatch/main pool/status");
        assert_eq!(msgs[3].0, "homeassistant/binary_sensor/poolwatch_main_pool/lane2/config");
        let v: serde_json::Value = serde_json::from_str(&msgs[3].1).unwrap();
        assert_eq!(v["value_template"], "{{ 'ON' if value_json.lanes[1] > 0 else 'OFF' }}");
        assert_eq!(v["device"]["identifiers"][0], "poolwatch_main_pool");
        assert_eq!(msgs[4].0, "homeassistant/sensor/poolwatch_main_pool/lane2_laps/config");
        let v: serde_json::Value = serde_json::from_str(&msgs[4].1).unwrap();
        assert_eq!((v["state_topic"].as_str(), v["value_template"].as_str()), (Some("poolwatch/main pool/laps/2"), Some("{{ value_json.lap }}")));
        assert_eq!(msgs[5].0, "homeassistant/binary_sensor/poolwatch_main_pool/alarm/config");
        let v: serde_json::Value = serde_json::from_str(&msgs[5].1).unwrap();
        assert_eq!((v["state_topic"].as_str(), v["device_class"].as_str()), (Some("poolwatch/main pool/alarm"), Some("safety")));
    }

    #[test]
    fn the_alarm_message_has_the_highest_level_and_each_alarm() {
        use crate::pipeline::alarm::{AlarmEvent, Level};
        let v: serde_json::Value = serde_json::from_str(&alarm_message(&[], 5.0)).unwrap();
        assert_eq!((v["state"].as_str(), v["alarms"].as_array().map(|a| a.len())), (Some("clear"), Some(0)));
        let a = |state| AlarmEvent { state, track: 3, ts: 9.0, still_s: 6.0, bbox: [0.0; 4], lane: Some(2), distance_m: Some(12.5), reason: None };
        let v: serde_json::Value = serde_json::from_str(&alarm_message(&[a(Level::Warning), a(Level::Alarm)], 9.0)).unwrap();
        assert_eq!(v["state"], "alarm");
        assert_eq!((v["alarms"][0]["lane"].as_u64(), v["alarms"][0]["distance_m"].as_f64()), (Some(2), Some(12.5)));
    }

    #[test]
    fn zone_topics_and_the_zone_a_set_topic_names() {
        let t = Topics::new("poolwatch", "main");
        assert_eq!(t.zone("shallow"), "poolwatch/main/zones/shallow");
        assert_eq!(t.zone_set_filter(), "poolwatch/main/zones/+/set");
        assert_eq!(t.zone_of_set("poolwatch/main/zones/shallow/set"), Some("shallow"));
        for other in ["poolwatch/main/zones/shallow", "poolwatch/other/zones/a/set", "poolwatch/main/zones/a/b/set", "poolwatch/mainzones/a/set"] {
            assert_eq!(t.zone_of_set(other), None, "{other}");
        }
    }

    #[test]
    fn settings_are_validated() {
        assert!(MqttSettings::default().validate().is_ok());
        let e = MqttSettings { topic_prefix: "a/#".into(), ..Default::default() }.validate().unwrap_err();
        assert_eq!(e.key, "topic_prefix");
        let e = MqttSettings { password: Some("x".into()), ..Default::default() }.validate().unwrap_err();
        assert_eq!(e.key, "password");
        let e = MqttSettings { tls: true, ..Default::default() }.validate().unwrap_err();
        assert!(e.key == "tls" || e.key == "ca_file", "{e:?}");
    }
}
