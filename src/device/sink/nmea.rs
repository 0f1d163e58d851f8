//! The serial line protocol: NMEA-0183-style ASCII sentences with an XOR checksum, one per line.
//!
//! `$PW<TYPE>,<field>,...*<XX>\r\n` where `XX` is the XOR of every byte between `$` and `*` in
//! upper-case hex. Types: `FRM` (per-frame summary), `DET` (one per swimmer), `LAN` (swimmers per
//! lane), `EVT` (a swimmer appears or leaves), `HBT` (heartbeat, once a second). The README has the
//! grammar with examples.

use crate::device::report::{Event, FrameReport, Stats, Swimmer};
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

/// `$PWHBT,<unix ts>,<uptime s>,<fps>,<OK|START|NOSRC|STALL>,<dropped>`
pub fn heartbeat(now_unix: f64, s: &Stats, stalled: bool) -> String {
    let state = if !s.source_ok {
        "NOSRC"
    } else if s.processed == 0 {
        "START"
    } else if stalled {
        "STALL"
    } else {
        "OK"
    };
    sentence(&format!("PWHBT,{:.3},{:.0},{:.1},{},{}", now_unix, s.uptime_s, s.fps, state, s.dropped))
}

/// Every sentence of one frame: summary, one per swimmer, lanes (when mapped), events other than updates.
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
        let st = Stats { uptime_s: 12.0, fps: 24.96, source_ok: true, dropped: 3, processed: 5, ..Default::default() };
        assert_eq!(parse(&heartbeat(100.0, &st, false)).unwrap(), ["PWHBT", "100.000", "12", "25.0", "OK", "3"]);
        assert_eq!(parse(&heartbeat(100.0, &st, true)).unwrap()[4], "STALL");
        assert_eq!(parse(&heartbeat(100.0, &Stats { processed: 0, ..st.clone() }, true)).unwrap()[4], "START");
        let st = Stats { source_ok: false, ..st };
        assert_eq!(parse(&heartbeat(100.0, &st, false)).unwrap()[4], "NOSRC");
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
}
