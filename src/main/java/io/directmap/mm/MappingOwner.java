package io.directmap.mm;

/**
 * Who a device mapping was made for, as the exporter (the filesystem, a driver) reaches it to take
 * the mapping back: the vma ({@link Vma#owner()}), which passes the invalidation on to the interval notifiers of every importer that
 * overlaps it. invalidate returns when all of them have let go (stopped DMA, waited for what was in
 * flight, dropped their table entries): that return is the acknowledgement.
 */
@FunctionalInterface
public interface MappingOwner {
    /**
     * Takes the mappings of the invalidation's range back: returns when every importer let go.
     *
     * @param invalidation what is taken back, and why
     * @throws RuntimeException when an importer did not let go (the exporter decides what then)
     */
    void invalidate(Invalidation invalidation);

    /** For mappings made with no one to tell (explain, tests of an exporter alone). */
    MappingOwner NOBODY = inv -> { };
}
