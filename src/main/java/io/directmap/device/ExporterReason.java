package io.directmap.device;

import io.directmap.mm.Reason;
import io.directmap.mm.Refuser;
import io.directmap.mm.Transfer;
import java.util.Locale;
import java.util.Optional;

/**
 * Why a software device that exports its memory ({@link ExportedMemory}) does not give an importer
 * a peer-to-peer mapping of it: the proposal's two reasons (no peer-to-peer path, out of BAR
 * space) and the flags it does not serve. The importer then bounces the bytes through host memory
 * (the vma's pages of the device file), so every refusal here says the bytes travel that way.
 */
public enum ExporterReason implements Reason {
    /** The topology has no peer-to-peer path between the two (the detail names the bridge, bit or rule). */
    NO_P2P_PATH("no peer-to-peer path between the exporter and the importer"),
    /** SUPPORT_ATOMIC_OP was asked and a link or the exporter does not carry 64-bit AtomicOps (the detail says which). */
    NO_ATOMICS_ON_PATH("the path between the exporter and the importer does not carry PCIe atomics"),
    /** No window of the exporter's aperture is free (the detail gives its size, free bytes, largest free window, what was asked). */
    APERTURE_FULL("the exporter's BAR aperture has no room left"),
    /** DEVICE_MAP_FLAG_WRITE: the exporter exports its memory read-only. */
    WRITE_NOT_SUPPORTED("writable peer mappings of exported memory are not supported"),
    /** DEVICE_MAP_FLAG_PIN: the exporter has no dma_buf to pin its memory with. */
    PIN_NOT_SUPPORTED("pinned peer mappings (dma_buf) of exported memory are not supported"),
    /** The importer asked for all or nothing and the aperture could hold only part of the range: all of it bounces. */
    ALL_OR_NOTHING(Refuser.IMPORTER, "the importer asked for all or nothing, and part of the range was refused");

    private static final Optional<Transfer> BOUNCE = Optional.of(Transfer.CACHE_HOT);

    private final Refuser refuser;
    private final String summary;

    ExporterReason(String summary) { this(Refuser.EXPORTER, summary); }

    ExporterReason(Refuser refuser, String summary) {
        this.refuser = refuser;
        this.summary = summary;
    }

    @Override public Refuser refuser() { return refuser; }
    @Override public String code() { return name().toLowerCase(Locale.ROOT); }
    @Override public String summary() { return summary; }

    /** A refused range is copied from the memory's pages in host memory, which are always resident: a hot copy. */
    @Override public Optional<Transfer> transfer() { return BOUNCE; }
}
