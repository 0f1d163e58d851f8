//! Swimmer tracking: stable IDs across frames by greedy IoU matching, with the seed's tracklet
//! validation (a box must persist `min_hits` frames before it is reported) and new/update/end events.

use crate::util::setting::{SettingError, in_range};
use crate::pipeline::boxes::BBox;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackSettings {
    /// Frames a box must be seen in (allowing gaps up to `max_missed`) before it is a swimmer.
    pub min_hits: u32,
    /// Frames a swimmer may go unseen before its track ends.
    pub max_missed: u32,
    /// Smallest IoU between a track's last box and a new box to be the same swimmer.
    pub iou: f32,
    /// When IoU is lower: largest centre distance, as a fraction of the larger box side, to still match.
    pub max_jump: f32,
    /// While a track is not yet confirmed, a box this many times larger or smaller (in area, each
    /// area counted with [`RESIZE_SLACK`] of the frame added) than its last restarts its count of hits
    /// (0: no limit). A swimmer's box changes size little from one frame to the next; the stirred
    /// surface's blobs, which come and go in the same place, jump: 2 takes T1's false boxes from 0.18
    /// to 0.02 a frame over three training seeds and changes no number of T2 or V1 (docs/accuracy.md,
    /// session 18).
    pub max_resize: f32,
}

/// [`TrackSettings::max_resize`] compares areas with this fraction of the frame added to each: a far
/// swimmer a few pixels long whose box doubles as its head and feet join is no jump (an 8-lane pool
/// filmed from the stands lost lengths without it), a patch of surface a tenth of the frame is.
pub const RESIZE_SLACK: f32 = 0.002;

/// The default [`TrackSettings::max_resize`].
pub const MAX_RESIZE: f32 = 2.0;

impl Default for TrackSettings {
    /// Fifteen frames to confirm a swimmer (0.6 s at 25 frames/s) and none missed. Ten cut the false
    /// boxes per frame on the real footage by 2-5x against 3 and 5; fifteen halves what was left,
    /// bursts of the water surface stirred by the swimmer, which come and go within 20 frames, at 0.02
    /// F1 on the videos whose swimmer is easy (docs/accuracy.md, session 8). The price: a swimmer missed in one
    /// frame gets a new ID fifteen frames later; a larger `max_missed` keeps IDs steadier but lets more
    /// false boxes linger.
    fn default() -> Self {
        TrackSettings { min_hits: 15, max_missed: 0, iou: 0.2, max_jump: 0.75, max_resize: MAX_RESIZE }
    }
}

impl TrackSettings {
    /// Every key in its range (keys as the `[tracking]` section names them).
    pub fn validate(&self) -> Result<(), SettingError> {
        in_range("min_hits", self.min_hits, 1..=1000)?;
        in_range("max_missed", self.max_missed, 0..=10_000)?;
        in_range("iou", self.iou, 0.0..=1.0)?;
        in_range("max_jump", self.max_jump, 0.0..=10.0)?;
        if self.max_resize != 0.0 {
            in_range("max_resize", self.max_resize, 1.0..=1000.0)
                .map_err(|e| SettingError::new(e.key, format!("{} (or 0: no limit)", e.message)))?;
        }
        Ok(())
    }
}

/// A tracked swimmer as reported: confirmed tracks only.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Track {
    pub id: u64,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub score: f32,
    /// Frames it has been seen in.
    pub hits: u32,
    /// Frames since it was last seen (0 = in this frame).
    pub missed: u32,
    /// Frame sequence number it was first seen at (while tentative, a box that jumped in size
    /// ([`TrackSettings::max_resize`]) starts it again).
    pub since: u64,
}

impl Track {
    /// The track's box as the box stage makes them.
    pub fn as_bbox(&self) -> BBox {
        let [x1, y1, x2, y2] = self.bbox;
        BBox { x1, y1, x2, y2, score: self.score }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    New,
    Update,
    End,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::New => "new",
            EventKind::Update => "update",
            EventKind::End => "end",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrackEvent {
    pub kind: EventKind,
    pub track: Track,
}

struct Live {
    track: Track,
    confirmed: bool,
}

/// Keeps the live tracks; one `update` per processed frame.
pub struct Tracker {
    settings: TrackSettings,
    live: Vec<Live>,
    next_id: u64,
}

fn as_array(b: &BBox) -> [f32; 4] {
    [b.x1, b.y1, b.x2, b.y2]
}

fn affinity(s: &TrackSettings, t: &[f32; 4], b: &BBox) -> Option<f32> {
    let tb = BBox::new(t[0], t[1], t[2], t[3]);
    let iou = tb.iou(b);
    if iou >= s.iou && iou > 0.0 {
        return Some(1.0 + iou);
    }
    let (tx, ty) = tb.center();
    let (bx, by) = b.center();
    let side = tb.width().max(tb.height()).max(b.width()).max(b.height()).max(1.0);
    let d = ((tx - bx).powi(2) + (ty - by).powi(2)).sqrt() / side;
    (d <= s.max_jump).then_some(1.0 - d / (s.max_jump + 1e-6))
}

/// Whether `b` is more than `max` times larger or smaller in area than the box `t`, both areas with
/// `slack` added (never with `max` 0).
fn resized(t: &[f32; 4], b: &BBox, max: f32, slack: f32) -> bool {
    if max <= 0.0 {
        return false;
    }
    let (a, c) = ((BBox::new(t[0], t[1], t[2], t[3]).area() + slack).max(1.0), (b.area() + slack).max(1.0));
    a.max(c) > max * a.min(c)
}

impl Tracker {
    pub fn new(settings: TrackSettings) -> Tracker {
        Tracker { settings, live: Vec::new(), next_id: 1 }
    }

    pub fn settings(&self) -> &TrackSettings {
        &self.settings
    }

    /// Replaces the settings, keeping the live tracks.
    pub fn set_settings(&mut self, settings: TrackSettings) {
        self.settings = settings;
    }

    /// Matches this frame's boxes (of a `frame`-sized image, width and height) to the live tracks;
    /// returns the events of the frame.
    pub fn update(&mut self, seq: u64, boxes: &[BBox], frame: (u32, u32)) -> Vec<TrackEvent> {
        let slack = RESIZE_SLACK * frame.0 as f32 * frame.1 as f32;
        // Greedy assignment on the best affinities first: optimal enough for a handful of swimmers.
        let mut pairs = Vec::new();
        for (ti, l) in self.live.iter().enumerate() {
            for (bi, b) in boxes.iter().enumerate() {
                if let Some(a) = affinity(&self.settings, &l.track.bbox, b) {
                    pairs.push((a, ti, bi));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_used = vec![false; self.live.len()];
        let mut box_used = vec![false; boxes.len()];
        let mut events = Vec::new();
        for (_, ti, bi) in pairs {
            if track_used[ti] || box_used[bi] {
                continue;
            }
            track_used[ti] = true;
            box_used[bi] = true;
            let l = &mut self.live[ti];
            if !l.confirmed && resized(&l.track.bbox, &boxes[bi], self.settings.max_resize, slack) {
                l.track.hits = 0;
                l.track.since = seq;
            }
            l.track.bbox = as_array(&boxes[bi]);
            l.track.score = boxes[bi].score;
            l.track.hits += 1;
            l.track.missed = 0;
            if !l.confirmed && l.track.hits >= self.settings.min_hits {
                l.confirmed = true;
                events.push(TrackEvent { kind: EventKind::New, track: l.track.clone() });
            } else if l.confirmed {
                events.push(TrackEvent { kind: EventKind::Update, track: l.track.clone() });
            }
        }
        for (ti, used) in track_used.iter().enumerate() {
            if !used {
                self.live[ti].track.missed += 1;
            }
        }
        let max_missed = self.settings.max_missed;
        // A tentative track gets no grace: the seed's validation wants consecutive sightings
        // (within the allowed gap) before it believes a box.
        self.live.retain(|l| {
            let gone = l.track.missed > max_missed || (!l.confirmed && l.track.missed > max_missed.min(1));
            if gone && l.confirmed {
                events.push(TrackEvent { kind: EventKind::End, track: l.track.clone() });
            }
            !gone
        });
        for (bi, b) in boxes.iter().enumerate() {
            if box_used[bi] {
                continue;
            }
            let track = Track { id: 0, bbox: as_array(b), score: b.score, hits: 1, missed: 0, since: seq };
            let mut l = Live { track, confirmed: false };
            l.track.id = self.next_id;
            self.next_id += 1;
            if self.settings.min_hits <= 1 {
                l.confirmed = true;
                events.push(TrackEvent { kind: EventKind::New, track: l.track.clone() });
            }
            self.live.push(l);
        }
        events
    }

    /// The confirmed tracks, including those briefly unseen.
    pub fn tracks(&self) -> impl Iterator<Item = &Track> {
        self.live.iter().filter(|l| l.confirmed).map(|l| &l.track)
    }

    /// Ends every confirmed track (at shutdown), returning their end events.
    pub fn finish(&mut self) -> Vec<TrackEvent> {
        self.live
            .drain(..)
            .filter(|l| l.confirmed)
            .map(|l| TrackEvent { kind: EventKind::End, track: l.track })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frame the test boxes are in: 640 x 480, so the slack of [`RESIZE_SLACK`] is 614 pixels.
    const FRAME: (u32, u32) = (640, 480);

    fn b(x: f32, y: f32) -> BBox {
        let mut b = BBox::new(x, y, x + 40.0, y + 20.0);
        b.score = 1.0;
        b
    }

    fn kinds(ev: &[TrackEvent]) -> Vec<(EventKind, u64)> {
        ev.iter().map(|e| (e.kind, e.track.id)).collect()
    }

    #[test]
    fn a_box_is_reported_after_min_hits_and_ends_after_max_missed() {
        let mut t = Tracker::new(TrackSettings { min_hits: 3, max_missed: 2, ..Default::default() });
        assert!(t.update(0, &[b(10.0, 10.0)], FRAME).is_empty());
        assert!(t.update(1, &[b(14.0, 10.0)], FRAME).is_empty());
        assert_eq!(t.tracks().count(), 0);
        assert_eq!(kinds(&t.update(2, &[b(18.0, 10.0)], FRAME)), [(EventKind::New, 1)]);
        assert_eq!(t.tracks().next().unwrap().bbox, [18.0, 10.0, 58.0, 30.0]);
        assert_eq!(kinds(&t.update(3, &[b(22.0, 10.0)], FRAME)), [(EventKind::Update, 1)]);
        // Unseen for two frames: still alive; the third ends it.
        assert!(t.update(4, &[], FRAME).is_empty());
        assert!(t.update(5, &[], FRAME).is_empty());
        assert_eq!(t.tracks().next().unwrap().missed, 2);
        assert_eq!(kinds(&t.update(6, &[], FRAME)), [(EventKind::End, 1)]);
        assert_eq!(t.tracks().count(), 0);
    }

    #[test]
    fn flicker_never_becomes_a_swimmer() {
        let mut t = Tracker::new(TrackSettings { min_hits: 3, max_missed: 5, ..Default::default() });
        for seq in 0..20 {
            // A glint seen every third frame at the same place.
            let boxes = if seq % 3 == 0 { vec![b(100.0, 100.0)] } else { vec![] };
            assert!(t.update(seq, &boxes, FRAME).is_empty(), "frame {seq}");
        }
    }

    #[test]
    fn two_swimmers_keep_their_ids_when_they_pass() {
        let mut t = Tracker::new(TrackSettings { min_hits: 1, max_missed: 1, ..Default::default() });
        let mut ids = Vec::new();
        for i in 0..10 {
            let x = i as f32 * 8.0;
            let ev = t.update(i, &[b(x, 0.0), b(200.0 - x, 60.0)], FRAME);
            let mut frame: Vec<_> = ev.iter().map(|e| (e.track.id, e.track.bbox[1] as i32)).collect();
            frame.sort();
            ids.push(frame);
        }
        assert!(ids.iter().all(|f| f == &[(1, 0), (2, 60)]), "{ids:?}");
        let end = t.finish();
        assert_eq!(end.len(), 2);
        assert!(end.iter().all(|e| e.kind == EventKind::End));
    }

    #[test]
    fn a_fast_swimmer_matches_by_centre_distance() {
        let mut t = Tracker::new(TrackSettings { min_hits: 2, max_missed: 0, iou: 0.3, max_jump: 0.75, ..Default::default() });
        t.update(0, &[b(0.0, 0.0)], FRAME);
        // Moved 28 px: IoU 0.18, but the centre is within 0.75 box sides.
        assert_eq!(kinds(&t.update(1, &[b(28.0, 0.0)], FRAME)), [(EventKind::New, 1)]);
        // Far away: a different swimmer, and the first one ends.
        let ev = t.update(2, &[b(300.0, 0.0)], FRAME);
        assert_eq!(kinds(&ev), [(EventKind::End, 1)]);
    }

    #[test]
    fn a_tentative_box_that_jumps_in_size_starts_counting_again_a_confirmed_one_does_not() {
        let s = TrackSettings { min_hits: 3, max_missed: 0, max_resize: 2.0, ..Default::default() };
        let sized = |w: f32| {
            let mut b = BBox::new(100.0, 100.0, 100.0 + w, 200.0);
            b.score = 1.0;
            b
        };
        // 40 -> 90 wide (100 high: with the slack, 2.08 times the area) after two hits: the count restarts.
        let mut t = Tracker::new(s.clone());
        assert!(t.update(0, &[sized(40.0)], FRAME).is_empty());
        assert!(t.update(1, &[sized(40.0)], FRAME).is_empty());
        assert!(t.update(2, &[sized(90.0)], FRAME).is_empty(), "the third hit came with a jump");
        assert!(t.update(3, &[sized(90.0)], FRAME).is_empty());
        let ev = t.update(4, &[sized(90.0)], FRAME);
        assert_eq!(kinds(&ev), [(EventKind::New, 1)], "the same ID, confirmed three steady hits after the jump");
        assert_eq!((ev[0].track.hits, ev[0].track.since), (3, 2));
        // Once confirmed, a box may change size as it likes (a swimmer turning, a limb joining).
        let ev = t.update(5, &[sized(200.0)], FRAME);
        assert_eq!(kinds(&ev), [(EventKind::Update, 1)]);
        // Growing within the factor never restarts; with no limit, nothing does.
        for max_resize in [2.0, 0.0] {
            let mut t = Tracker::new(TrackSettings { max_resize, ..s.clone() });
            let widths: &[f32] = if max_resize > 0.0 { &[40.0, 70.0, 120.0] } else { &[40.0, 400.0, 40.0] };
            let ev: Vec<_> = widths.iter().enumerate().flat_map(|(i, &w)| t.update(i as u64, &[sized(w)], FRAME)).collect();
            assert_eq!(kinds(&ev), [(EventKind::New, 1)], "max_resize {max_resize}");
        }
        // A far swimmer's 10 x 5 box that doubles to 20 x 5 is no jump: the slack is larger than it.
        let mut t = Tracker::new(s);
        let small = |w: f32| BBox { score: 1.0, ..BBox::new(300.0, 300.0, 300.0 + w, 305.0) };
        let ev: Vec<_> = [10.0, 20.0, 10.0].iter().enumerate().flat_map(|(i, &w)| t.update(i as u64, &[small(w)], FRAME)).collect();
        assert_eq!(kinds(&ev), [(EventKind::New, 1)]);
    }

    #[test]
    fn settings_are_validated() {
        assert!(TrackSettings::default().validate().is_ok());
        assert!(TrackSettings { max_resize: 0.0, ..Default::default() }.validate().is_ok());
        assert_eq!(TrackSettings { max_resize: 0.5, ..Default::default() }.validate().unwrap_err().key, "max_resize");
        let e = TrackSettings { min_hits: 0, ..Default::default() }.validate().unwrap_err();
        assert_eq!(e.key, "min_hits");
        assert!(TrackSettings { iou: 2.0, ..Default::default() }.validate().is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::collections::HashMap;

        fn settings() -> impl Strategy<Value = TrackSettings> {
            (1u32..20, 0u32..6, 0.01f32..1.0, 0f32..3.0, prop_oneof![Just(0f32), 1f32..4.0])
                .prop_map(|(min_hits, max_missed, iou, max_jump, max_resize)| TrackSettings { min_hits, max_missed, iou, max_jump, max_resize })
        }

        /// Frames of boxes: a few swimmers drifting with noise, dropping out and back, plus clutter
        /// (degenerate boxes included).
        fn frames() -> impl Strategy<Value = Vec<Vec<BBox>>> {
            let a_box = (0f32..600.0, 0f32..400.0, 0f32..120.0, 0f32..80.0, 0f32..=1.0).prop_map(|(x, y, w, h, s)| {
                let mut b = BBox::new(x, y, x + w, y + h);
                b.score = s;
                b
            });
            proptest::collection::vec(proptest::collection::vec(a_box, 0..6), 1..60)
        }

        #[derive(PartialEq, Debug, Clone, Copy)]
        enum Life {
            Live,
            Ended,
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

            /// Whatever the boxes: each ID lives new -> updates -> end, once (so IDs are never reused); a
            /// box feeds at most one swimmer; a swimmer is reported only after `min_hits` sightings;
            /// the confirmed tracks are exactly those with a `new` and no `end`; `finish` ends them all.
            #[test]
            fn tracks_have_a_consistent_life(s in settings(), frames in frames()) {
                let mut t = Tracker::new(s.clone());
                let mut life: HashMap<u64, Life> = HashMap::new();
                for (seq, boxes) in frames.iter().enumerate() {
                    let seq = seq as u64;
                    let ev = t.update(seq, boxes, FRAME);
                    let mut fed = 0;
                    let mut seen_ids = Vec::new();
                    for e in &ev {
                        let id = e.track.id;
                        prop_assert!(!seen_ids.contains(&id), "two events for {id} in frame {seq}");
                        seen_ids.push(id);
                        match e.kind {
                            EventKind::New => {
                                prop_assert!(!life.contains_key(&id), "{id} new twice");
                                prop_assert!(e.track.hits >= s.min_hits);
                                prop_assert!(seq + 1 >= e.track.since + s.min_hits as u64, "{id} confirmed too early");
                                life.insert(id, Life::Live);
                                fed += 1;
                            }
                            EventKind::Update => {
                                prop_assert_eq!(life.get(&id), Some(&Life::Live), "update of {} before new or after end", id);
                                fed += 1;
                            }
                            EventKind::End => {
                                prop_assert_eq!(life.get(&id), Some(&Life::Live), "end of {} not live", id);
                                life.insert(id, Life::Ended);
                            }
                        }
                        if e.kind != EventKind::End {
                            let b = e.track.bbox;
                            prop_assert!(boxes.iter().any(|x| [x.x1, x.y1, x.x2, x.y2] == b), "a reported box that is not this frame's");
                            prop_assert_eq!(e.track.missed, 0);
                        }
                        prop_assert!(id >= 1);
                    }
                    prop_assert!(fed <= boxes.len(), "{fed} swimmers fed by {} boxes", boxes.len());
                    let mut live: Vec<u64> = t.tracks().map(|x| x.id).collect();
                    let n = live.len();
                    live.sort();
                    live.dedup();
                    prop_assert_eq!(live.len(), n, "duplicate IDs among the tracks");
                    let mut expect: Vec<u64> = life.iter().filter(|(_, l)| **l == Life::Live).map(|(id, _)| *id).collect();
                    expect.sort();
                    prop_assert_eq!(&live, &expect);
                    for x in t.tracks() {
                        prop_assert!(x.missed <= s.max_missed);
                    }
                }
                let end = t.finish();
                for e in &end {
                    prop_assert_eq!(e.kind, EventKind::End);
                    prop_assert_eq!(life.insert(e.track.id, Life::Ended), Some(Life::Live));
                }
                prop_assert!(life.values().all(|l| *l == Life::Ended));
                prop_assert_eq!(t.tracks().count(), 0);
            }
        }
    }
}
