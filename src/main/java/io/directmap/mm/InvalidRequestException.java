package io.directmap.mm;

import java.io.IOException;

/**
 * The contract's bad-input exception: a request no exporter or importer can answer (a range outside
 * the mapping, a file that cannot be mapped). The message names the file, the range and what to do
 * instead. A refusal is never this: it is a {@link Refusal} in the answer.
 */
public final class InvalidRequestException extends IOException {
    /**
     * A request that cannot be answered.
     *
     * @param message what is wrong, naming the file and the range, and what to do instead
     */
    public InvalidRequestException(String message) {
        super(message);
    }
}
