//! The serial line protocol: NMEA-0183-style ASCII sentences with an XOR checksum, one per line.
//!
//! `$PW<TYPE>,<field>,...*<XX>\r\n` where `XX` is the XOR of every byte between `$` and `*` in
//! upper-case hex. Types: `FRM` (per-frame summary), `DET` (one per swimmer), `LAN` (swimmers per
//! lane), `EVT` (a swimmer appears or leaves), `LAP` (a length completed), `HBT` (heartbeat, once a
//! second). The README has the grammar with examples.

use crate::device::report::{Event, FrameReport, Health, Stats, Swimmer};
use std::fmt::Write;

/// XOR of the bytes of a sentence body (between `$` and `*`).
pub fn checksum(body: &str) -> u8 {
    body.bytes().fold(0, |a, b| a ^ b)
}

/// Wraps a body into a full sentence with its checksum and CRLF.
pub fn sentence(body: &str) -> String {
    format!("${body}*{:02X}\r\n", checksum(body))
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// `$PWFRM,<frame>,<unix ts>,<swimmers>,<boxes>,<ms>`
pub fn frame_summary(r: &FrameReport) -> String {
    sentence(&format!("PWFRM,{},{:.3},{},{},{:.1}", r.seq, r.ts, r.swimmers.len(), r.boxes.len(), r.ms))
}

/// `$PWDET,<frame>,<id>,<lane>,<distance m>,<x1>,<y1>,<x2>,<y2>,<score>` (lane and distance empty
/// without a lane map or outside the pool).
pub fn detection(frame: u64, s: &Swimmer) -> String {
    let b = s.track.bbox;
    sentence(&format!(
        "PWDET,{},{},{},{},{:.0},{:.0},{:.0},{:.0},{:.2}",
        frame,
        s.track.id,
        opt(s.lane),
        opt(s.distance_m.map(|d| format!("{d:.1}"))),
        b[0],
        b[1],
        b[2],
        b[3],
        s.track.score
    ))
}

/// `$PWLAN,<frame>,<n lane 1>,<n lane 2>,...`
pub fn lanes(frame: u64, counts: &[u32]) -> String {
    let mut body = format!("PWLAN,{frame}");
    for c in counts {
        let _ = write!(body, ",{c}");
    }
    sentence(&body)
}

/// `$PWEVT,<new|end>,<id>,<frame>,<lane>,<distance m>`
pub fn event(e: &Event) -> String {
    sentence(&format!(
        "PWEVT,{},{},{},{},{}",
        e.event.as_str(),
        e.swimmer.track.id,
        e.frame,
        opt(e.swimmer.lane),
        opt(e.swimmer.distance_m.map(|d| format!("{d:.1}")))
    ))
}

/// `$PWLAP,<lane>,<lap>,<lap s>,<total s>,<touch unix ts>`: a length completed (lap timing).
pub fn lap(l: &crate::pipeline::timing::Lap) -> String {
    sentence(&format!("PWLAP,{},{},{:.2},{:.2},{:.3}", l.lane, l.lap, l.lap_s, l.total_s, l.ts))
}

/// `$PWALM,<warning|alarm|clear>,<track>,<lane>,<distance m>,<still s>,<unix ts>,<moved|gone|off>`: a
/// motionless-swimmer level raised or cleared (lane and distance empty without `[lanes]`, the reason
/// only on `clear`).
pub fn alarm(a: &crate::pipeline::alarm::AlarmEvent) -> String {
    let opt = |v: Option<String>| v.unwrap_or_default();
    let reason = a.reason.map(|r| match r {
        crate::pipeline::alarm::ClearReason::Moved => "moved",
        crate::pipeline::alarm::ClearReason::Gone => "gone",
        crate::pipeline::alarm::ClearReason::Off => "off",
    });
    sentence(&format!(
        "PWALM,{},{},{},{},{:.1},{:.3},{}",
        a.state.as_str(),
        a.track,
        opt(a.lane.map(|l| l.to_string())),
        opt(a.distance_m.map(|d| format!("{d:.1}"))),
        a.still_s,
        a.ts,
        reason.unwrap_or("")
    ))
}

/// `$PWHBT,<unix ts>,<uptime s>,<fps>,<OK|START|NOSRC|STALL|ERR>,<dropped>`: the pipeline's
/// [`Health`] (ERR: every frame fails).
pub fn heartbeat(now_unix: f64, s: &Stats) -> String {
    let state = match s.state {
        Health::Ok => "OK",
        Health::Starting => "START",
        Health::NoSource => "NOSRC",
        Health::Stalled => "STALL",
        Health::Failing => "ERR",
    };
    sentence(&format!("PWHBT,{:.3},{:.0},{:.1},{},{}", now_unix, s.uptime_s, s.fps, state, s.dropped))
}

/// Every sentence of one frame: summary, one per swimmer, lanes (when mapped), events other than updates,
/// lengths completed, alarm levels changed.
pub fn frame_sentences(r: &FrameReport) -> String {
    let mut out = frame_summary(r);
    for s in &r.swimmers {
        out.push_str(&detection(r.seq, s));
    }
    if !r.lanes.is_empty() {
        out.push_str(&lanes(r.seq, &r.lanes));
    }
    for e in r.events.iter().filter(|e| e.event != crate::pipeline::track::EventKind::Update) {
        out.push_str(&event(e));
    }
    for l in &r.laps {
        out.push_str(&lap(l));
    }
    for a in &r.alarms {
        out.push_str(&alarm(a));
    }
    out
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("does not start with '$'")]
    NoStart,
    #[error("no '*' checksum separator")]
    NoChecksum,
    #[error("checksum is not two hex digits")]
    BadHex,
    #[error("checksum mismatch: says {said:02X}, body gives {computed:02X}")]
    Mismatch { said: u8, computed: u8 },
}

/// Checks one sentence (with or without the line end) and returns its fields (the type first).
pub fn parse(line: &str) -> Result<Vec<&str>, ParseError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let rest = line.strip_prefix('$').ok_or(ParseError::NoStart)?;
    let (body, cs) = rest.rsplit_once('*').ok_or(ParseError::NoChecksum)?;
    if cs.len() != 2 {
        return Err(ParseError::BadHex);
    }
    let said = u8::from_str_radix(cs, 16).map_err(|_| ParseError::BadHex)?;
    let computed = checksum(body);
    if said != computed {
        return Err(ParseError::Mismatch { said, computed });
    }
    Ok(body.split(',').collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::track::{EventKind, Track};

    fn swimmer() -> Swimmer {
        let track = Track { id: 7, bbox: [10.0, 20.0, 50.5, 40.0], score: 0.876, hits: 4, missed: 0, since: 3 };
        Swimmer { track, lane: Some(3), distance_m: Some(12.345) }
    }

    #[test]
    fn checksum_matches_a_known_nmea_sentence() {
        // A GPS sentence from the NMEA 0183 examples, with its published checksum.
        assert_eq!(checksum("GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"), 0x47);
        assert_eq!(sentence("PWX,1"), "$PWX,1*42\r\n");
        assert_eq!(parse("$PWX,1*42\r\n").unwrap(), ["PWX", "1"]);
    }

    #[test]
    fn sentences_have_the_documented_fields() {
        let det = detection(42, &swimmer());
        assert!(det.starts_with("$PWDET,42,7,3,12.3,10,20,50,40,0.88*"), "{det}");
        assert!(det.ends_with("\r\n") && det.len() <= 82);
        assert_eq!(parse(&det).unwrap().len(), 10);
        let mut s = swimmer();
        s.lane = None;
        s.distance_m = None;
        assert!(detection(1, &s).starts_with("$PWDET,1,7,,,10,"));
        assert_eq!(parse(&lanes(5, &[0, 1, 2])).unwrap(), ["PWLAN", "5", "0", "1", "2"]);
        let e = Event { event: EventKind::New, frame: 9, ts: 1.0, swimmer: swimmer() };
        assert_eq!(parse(&event(&e)).unwrap(), ["PWEVT", "new", "7", "9", "3", "12.3"]);
        let st = Stats { uptime_s: 12.0, fps: 24.96, source_ok: true, dropped: 3, processed: 5, state: Health::Ok, ..Default::default() };
        assert_eq!(parse(&heartbeat(100.0, &st)).unwrap(), ["PWHBT", "100.000", "12", "25.0", "OK", "3"]);
        for (state, code) in [(Health::Stalled, "STALL"), (Health::Starting, "START"), (Health::NoSource, "NOSRC"), (Health::Failing, "ERR")] {
            assert_eq!(parse(&heartbeat(100.0, &Stats { state, ..st.clone() })).unwrap()[4], code);
        }
    }

    #[test]
    fn corrupted_sentences_are_refused() {
        let good = sentence("PWFRM,1,2.000,0,0,5.0");
        let bad = good.replace("5.0", "6.0");
        assert!(matches!(parse(&bad), Err(ParseError::Mismatch { .. })));
        assert_eq!(parse("PWFRM,1*00"), Err(ParseError::NoStart));
        assert_eq!(parse("$PWFRM,1"), Err(ParseError::NoChecksum));
        assert_eq!(parse("$PWFRM,1*G1"), Err(ParseError::BadHex));
    }

    mod properties {
        use super::*;
        use crate::pipeline::boxes::BBox;
        use crate::pipeline::alarm::{AlarmEvent, ClearReason, Level};
        use crate::pipeline::timing::{Lap, Wall};
        use proptest::prelude::*;

        fn a_swimmer() -> impl Strategy<Value = Swimmer> {
            (1u64..1_000_000, 0f32..4096.0, 0f32..4096.0, 0f32..4096.0, 0f32..4096.0, 0f32..=1.0, proptest::option::of(1u32..=16), proptest::option::of(-5f64..105.0), 1u32..10_000, 0u64..1_000_000)
                .prop_map(|(id, x1, y1, w, h, score, lane, distance_m, hits, since)| Swimmer {
                    track: Track { id, bbox: [x1, y1, x1 + w, y1 + h], score, hits, missed: 0, since },
                    lane,
                    distance_m,
                })
        }

        fn a_report() -> impl Strategy<Value = FrameReport> {
            let events = proptest::collection::vec((prop_oneof![Just(EventKind::New), Just(EventKind::Update), Just(EventKind::End)], a_swimmer()), 0..6);
            let laps = proptest::collection::vec(
                (1u32..=16, 1u32..1000, 5f64..600.0, 0f64..36_000.0, 1.5e9f64..2.5e9).prop_map(|(lane, lap, lap_s, total_s, ts)| Lap {
                    lane,
                    lap,
                    ts,
                    wall: Wall::Far,
                    lap_s,
                    total_s,
                    pace_s_100m: lap_s * 4.0,
                    track: 1,
                }),
                0..3,
            );
            let alarms = proptest::collection::vec(
                (prop_oneof![Just(Level::Warning), Just(Level::Alarm), Just(Level::Clear)], 1u64..1_000_000, proptest::option::of(1u32..=16), proptest::option::of(0f64..100.0), 0f64..3600.0, 1.5e9f64..2.5e9)
                    .prop_map(|(state, track, lane, distance_m, still_s, ts)| AlarmEvent {
                        state,
                        track,
                        ts,
                        still_s,
                        bbox: [1.0, 2.0, 3.0, 4.0],
                        lane,
                        distance_m,
                        reason: (state == Level::Clear).then_some(ClearReason::Gone),
                    }),
                0..3,
            );
            ((0u64..10_000_000_000, 1.5e9f64..2.5e9, proptest::collection::vec(a_swimmer(), 0..8), events, proptest::collection::vec(0u32..20, 0..12), 0f64..10_000.0, 0usize..20, laps), alarms)
                .prop_map(|((seq, ts, swimmers, events, lanes, ms, nboxes, laps), alarms)| FrameReport {
                    seq,
                    ts,
                    origin: "camera".into(),
                    width: 640,
                    height: 480,
                    boxes: vec![BBox::new(0.0, 0.0, 1.0, 1.0); nboxes],
                    swimmers,
                    events: events.into_iter().map(|(event, swimmer)| Event { event, frame: seq, ts, swimmer }).collect(),
                    lanes,
                    laps,
                    alarm_active: alarms.iter().filter(|a| a.state != Level::Clear).cloned().collect(),
                    alarms,
                    ms,
                    threshold: 1.0,
                    picture: None,
                })
        }

        fn close(field: &str, value: f64, step: f64) -> bool {
            field.parse::<f64>().is_ok_and(|v| (v - value).abs() <= step / 2.0 + value.abs() * 1e-6)
        }

        proptest! {
            /// Every sentence a frame makes parses back with its checksum, in the documented order, with
            /// the values it was made from (to the printed precision), within NMEA's 82 characters.
            #[test]
            fn every_frame_sentence_parses_back(r in a_report()) {
                let text = frame_sentences(&r);
                prop_assert!(text.ends_with("\r\n"));
                let lines: Vec<&str> = text.split_terminator("\r\n").collect();
                let fields: Vec<Vec<&str>> = lines.iter().map(|l| parse(l).unwrap()).collect();
                for l in &lines {
                    prop_assert!(l.len() + 2 <= 82, "{} characters: {l}", l.len() + 2);
                    prop_assert!(l.is_ascii() && !l[1..].contains('$'));
                }
                let f = &fields[0];
                prop_assert_eq!(f[0], "PWFRM");
                prop_assert_eq!(f[1].parse::<u64>().unwrap(), r.seq);
                prop_assert!(close(f[2], r.ts, 0.001));
                prop_assert_eq!(f[3].parse::<usize>().unwrap(), r.swimmers.len());
                prop_assert_eq!(f[4].parse::<usize>().unwrap(), r.boxes.len());
                prop_assert!(close(f[5], r.ms, 0.1));
                for (s, f) in r.swimmers.iter().zip(&fields[1..]) {
                    prop_assert_eq!(f.len(), 10);
                    prop_assert_eq!(f[0], "PWDET");
                    prop_assert_eq!(f[2].parse::<u64>().unwrap(), s.track.id);
                    prop_assert_eq!(f[3], s.lane.map(|l| l.to_string()).unwrap_or_default());
                    match s.distance_m {
                        Some(d) => prop_assert!(close(f[4], d, 0.1)),
                        None => prop_assert_eq!(f[4], ""),
                    }
                    for i in 0..4 {
                        prop_assert!(close(f[5 + i], s.track.bbox[i] as f64, 1.0));
                    }
                    prop_assert!(close(f[9], s.track.score as f64, 0.01));
                }
                let mut rest = fields[1 + r.swimmers.len()..].iter();
                if !r.lanes.is_empty() {
                    let f = rest.next().unwrap();
                    prop_assert_eq!(f[0], "PWLAN");
                    let counts: Vec<u32> = f[2..].iter().map(|c| c.parse().unwrap()).collect();
                    prop_assert_eq!(&counts, &r.lanes);
                }
                let shown: Vec<&Event> = r.events.iter().filter(|e| e.event != EventKind::Update).collect();
                let evts: Vec<&Vec<&str>> = rest.collect();
                prop_assert_eq!(evts.len(), shown.len() + r.laps.len() + r.alarms.len());
                for (e, f) in shown.iter().zip(&evts) {
                    prop_assert_eq!(f[0], "PWEVT");
                    prop_assert_eq!(f[1], e.event.as_str());
                    prop_assert_eq!(f[2].parse::<u64>().unwrap(), e.swimmer.track.id);
                }
                for (l, f) in r.laps.iter().zip(&evts[shown.len()..]) {
                    prop_assert_eq!(f.len(), 6);
                    prop_assert_eq!(f[0], "PWLAP");
                    prop_assert_eq!(f[1].parse::<u32>().unwrap(), l.lane);
                    prop_assert_eq!(f[2].parse::<u32>().unwrap(), l.lap);
                    prop_assert!(close(f[3], l.lap_s, 0.01) && close(f[4], l.total_s, 0.01) && close(f[5], l.ts, 0.001));
                }
                for (a, f) in r.alarms.iter().zip(&evts[shown.len() + r.laps.len()..]) {
                    prop_assert_eq!(f.len(), 8);
                    prop_assert_eq!(f[0], "PWALM");
                    prop_assert_eq!(f[1], a.state.as_str());
                    prop_assert_eq!(f[2].parse::<u64>().unwrap(), a.track);
                    prop_assert_eq!(f[3], a.lane.map(|l| l.to_string()).unwrap_or_default());
                    match a.distance_m {
                        Some(d) => prop_assert!(close(f[4], d, 0.1)),
                        None => prop_assert_eq!(f[4], ""),
                    }
                    prop_assert!(close(f[5], a.still_s, 0.1) && close(f[6], a.ts, 0.001));
                    prop_assert_eq!(f[7], if a.state == Level::Clear { "gone" } else { "" });
                }
            }

            /// Any one byte changed in a sentence's body is caught by the checksum.
            #[test]
            fn one_changed_byte_is_caught(r in a_report(), pos in any::<prop::sample::Index>(), byte in 0x20u8..0x7f) {
                let line = frame_summary(&r);
                let body_end = line.find('*').unwrap();
                let i = 1 + pos.index(body_end - 1);
                prop_assume!(line.as_bytes()[i] != byte && byte != b'*' && byte != b'$');
                let mut bad = line.clone().into_bytes();
                bad[i] = byte;
                let bad = String::from_utf8(bad).unwrap();
                prop_assert!(matches!(parse(&bad), Err(ParseError::Mismatch { .. })), "{bad:?} was accepted");
            }

            /// The heartbeat parses back for any counters.
            #[test]
            fn heartbeats_parse_back(uptime in 0f64..1e9, fps in 0f64..1000.0, dropped in any::<u64>(), now in 0f64..4e9) {
                let st = Stats { uptime_s: uptime, fps, dropped, ..Default::default() };
                let f = parse(&heartbeat(now, &st)).unwrap().into_iter().map(str::to_string).collect::<Vec<_>>();
                prop_assert_eq!(f.len(), 6);
                prop_assert!(close(&f[1], now, 0.001) && close(&f[2], uptime, 1.0) && close(&f[3], fps, 0.1));
                prop_assert_eq!(f[5].parse::<u64>().unwrap(), dropped);
            }
        }
    }
}
