package io.directmap.mm;

/** A refusal: the reason and the detail that makes it actionable ("2048 pages of 0..8 MiB are cached"). */
public record Refusal(Reason reason, String detail) {
    @Override
    public String toString() {
        return reason.refuser().label() + ": " + reason.summary() + (detail.isEmpty() ? "" : " (" + detail + ")");
    }
}
