namespace Lodestar.Discovery;

/// <summary>Helpers for reading registry answers with a bound on their size.</summary>
public static class RegistryStreams
{
    /// <summary>
    /// Wraps a stream so that reading more than <paramref name="maxBytes"/> bytes from it throws
    /// <see cref="RegistryResponseTooLargeException"/> instead of buffering them. Use it around a response body before
    /// a streaming JSON deserializer, or around each event of a watch stream (see <see cref="LimitedStream.ResetCount"/>).
    /// </summary>
    /// <param name="inner">The stream to read; disposed with the wrapper.</param>
    /// <param name="maxBytes">The most bytes that may be read; at least 1.</param>
    /// <param name="description">What is read, for the error (for example <c>Consul at http://127.0.0.1:8500: GET /v1/health/service/orders</c>); must hold no secret.</param>
    /// <returns>The bounded stream.</returns>
    public static LimitedStream Limit(Stream inner, long maxBytes, string description)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        ArgumentNullException.ThrowIfNull(description);
        return new LimitedStream(inner, maxBytes, description);
    }

    /// <summary>Reads a whole response body of at most <paramref name="maxBytes"/> bytes, failing as soon as it exceeds them.</summary>
    /// <param name="content">The body.</param>
    /// <param name="maxBytes">The most bytes to read.</param>
    /// <param name="description">What is read, for the error; must hold no secret.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The body's bytes.</returns>
    /// <exception cref="RegistryResponseTooLargeException">The body is longer (by its Content-Length, or as it arrives).</exception>
    public static async Task<byte[]> ReadAsync(HttpContent content, long maxBytes, string description, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        if (content.Headers.ContentLength is { } length && length > maxBytes)
        {
            throw LimitedStream.TooLarge(description, maxBytes, length);
        }

        var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var limited = Limit(stream, maxBytes, description);
            using var buffer = new MemoryStream(content.Headers.ContentLength is { } known ? (int)Math.Min(known, maxBytes) : 0);
            await limited.CopyToAsync(buffer, 16 * 1024, cancellationToken).ConfigureAwait(false);
            return buffer.ToArray();
        }
    }
}
