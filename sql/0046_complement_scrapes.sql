-- A member scraped because its chain's anchors changed en masse (a new week's
-- specials) and it carries most of what its anchor does not
-- (grouping/service.complement_members; docs/verification.md).
ALTER TABLE verifications DROP CONSTRAINT verifications_reason_check;
ALTER TABLE verifications ADD CONSTRAINT verifications_reason_check
    CHECK (reason IN ('random', 'risk', 'forced', 'named', 'bootstrap', 'spot', 'complement'));
