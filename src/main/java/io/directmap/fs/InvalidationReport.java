package io.directmap.fs;

import io.directmap.mm.Invalidation;
import java.nio.file.Path;

/**
 * One invalidation as it happened: the file, what changed, how many device mappings and owners
 * (vmas) were asked, and how long they took to let go (from the change being seen to the last
 * acknowledgement).
 */
public record InvalidationReport(Path file, Invalidation invalidation, int mappings, int owners, long ackNanos) {}
