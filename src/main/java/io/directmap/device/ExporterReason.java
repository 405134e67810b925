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
    NO_P2P_PATH("no peer-to-peer path between the exporter and the importer"),
    NO_ATOMICS_ON_PATH("the path between the exporter and the importer does not carry PCIe atomics"),
    APERTURE_FULL("the exporter's BAR aperture has no room left"),
    WRITE_NOT_SUPPORTED("writable peer mappings of exported memory are not supported"),
    PIN_NOT_SUPPORTED("pinned peer mappings (dma_buf) of exported memory are not supported"),
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
