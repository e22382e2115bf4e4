-- A comparison may stop early once a pair has more disagreeing products than any
-- MATCH allows: it is then recorded as incomplete (counts so far), and re-used
-- only as "no match" by runs whose match_threshold is at least `threshold`.
ALTER TABLE comparisons
    ADD COLUMN complete boolean NOT NULL DEFAULT true,
    ADD COLUMN threshold double precision;
