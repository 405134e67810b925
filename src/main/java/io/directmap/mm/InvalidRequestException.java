package io.directmap.mm;

import java.io.IOException;

/** Bad input from the caller: the message names the file, the range and what to do instead. */
public final class InvalidRequestException extends IOException {
    public InvalidRequestException(String message) {
        super(message);
    }
}
