package io.directmap.mm;

/**
 * The answer "no" to part of a device_map request: the reason (and through it who refused) and the
 * detail that makes it actionable ("2048 pages of 0..8 MiB are cached").
 *
 * @param reason why, and through it who refused
 * @param detail what a person can act on; empty when the reason says it all
 */
public record Refusal(Reason reason, String detail) {
    @Override
    public String toString() {
        return reason.refuser().label() + ": " + reason.summary() + (detail.isEmpty() ? "" : " (" + detail + ")");
    }
}
