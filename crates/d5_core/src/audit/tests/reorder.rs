//! Reordering verifier: a nearly-ordered feed gives the ordered result;
//! anything it cannot order is refused so the caller reads in order.

use super::*;

fn feed(recs: &[&Rec], first_seq: i64) -> Result<ChainReport, Disorder> {
    let mut v = ReorderingVerifier::new(ChainVerifier::new(T1), first_seq);
    for r in recs {
        v.feed(&r.record(), &r.hash)?;
    }
    v.finish()
}

#[test]
fn shuffled_nearby_records_verify_as_in_order() {
    let recs = chain(50);
    // Swap neighbours pairwise and move one record far back.
    let mut order: Vec<&Rec> = recs.iter().collect();
    for i in (0..48).step_by(2) {
        order.swap(i, i + 1);
    }
    let late = order.remove(10);
    order.push(late);
    assert_eq!(feed(&order, 1), Ok(verify(&recs)));
    assert!(verify(&recs).ok);
}

#[test]
fn a_broken_record_out_of_order_is_reported_at_its_seq() {
    let mut recs = chain(30);
    recs[19].new_row = Some("{\"id\": 20, \"amount\": 999}".into());
    let mut order: Vec<&Rec> = recs.iter().collect();
    order.swap(18, 21);
    let report = feed(&order, 1).expect("only reordered, nothing missing");
    assert_eq!(report, verify(&recs));
    assert_bad(&report, 20, "hash mismatch");
    assert_eq!(report.records, 30);
}

#[test]
fn duplicates_gaps_and_early_seqs_need_an_ordered_read() {
    let recs = chain(10);
    let mut dup: Vec<&Rec> = recs.iter().collect();
    dup.insert(5, &recs[7]);
    assert_eq!(feed(&dup, 1), Err(Disorder), "a seq seen twice ahead of its turn");
    let mut dup_behind: Vec<&Rec> = recs.iter().collect();
    dup_behind.push(&recs[3]);
    assert_eq!(feed(&dup_behind, 1), Err(Disorder), "a seq seen twice after its turn");
    let gap: Vec<&Rec> = recs.iter().filter(|r| r.seq != 4).collect();
    assert_eq!(feed(&gap, 1), Err(Disorder), "a missing record leaves the rest waiting");
    let all: Vec<&Rec> = recs.iter().collect();
    assert_eq!(feed(&all, 3), Err(Disorder), "records below the expected start");
}

#[test]
fn waiting_bytes_are_released_when_the_gap_fills() {
    let recs = chain(5);
    let mut v = ReorderingVerifier::new(ChainVerifier::new(T1), 1);
    for r in recs.iter().rev().take(4) {
        v.feed(&r.record(), &r.hash).expect("ahead of turn");
    }
    assert!(v.waiting_bytes() > 4 * 100);
    v.feed(&recs[0].record(), &recs[0].hash).expect("fills the gap");
    assert_eq!(v.waiting_bytes(), 0);
    assert_eq!(v.last_seq(), 5);
    assert!(v.finish().expect("complete").ok);
}
