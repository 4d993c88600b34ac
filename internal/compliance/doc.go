// Package compliance turns Gatehouse's live state and its audit log into
// SOC 2 evidence: the control catalog (AICPA Trust Services Criteria 2017,
// points of focus revised 2022), checks that decide each control from what
// the running system holds, signed reports whose findings cite audit
// entries with RFC 6962 inclusion proofs, and their offline verification.
//
// A check that cannot be decided from data reports StatusManual and says
// what a person must provide; a report never claims StatusPass for a check
// that cites no evidence (Build downgrades it, Verify refuses it).
package compliance
