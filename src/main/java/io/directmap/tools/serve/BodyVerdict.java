package io.directmap.tools.serve;

/**
 * What one HTTP response body held, read against {@link StampedBlocks}: one version throughout,
 * blocks of two versions, or a block that is no version's at all (a write caught half-way through
 * a page). {@code complete} says whether the body reached its Content-Length: a client sees a
 * cut-off body as a failed transfer, a complete one as the file.
 */
public sealed interface BodyVerdict {
    /** Bytes of body received. */
    long bytes();

    /** True when the body reached the response's Content-Length. */
    boolean complete();

    /** True for the verdicts a coherent server must never send complete. */
    default boolean wrong() { return !(this instanceof Clean); }

    /** Every whole block (and the received part of a last, partial one) is of {@code version}. */
    record Clean(long version, long bytes, boolean complete) implements BodyVerdict {}

    /** Block {@code block} is of {@code otherVersion} where the blocks before it are of {@code version}. */
    record Mixed(long version, long otherVersion, long block, long bytes, boolean complete) implements BodyVerdict {}

    /** Block {@code block} is no single version's bytes (its stamp or its contents disagree). */
    record Torn(long block, long bytes, boolean complete) implements BodyVerdict {}
}
