using System.Globalization;

namespace Lodestar.Discovery;

/// <summary>
/// A read-only stream that throws <see cref="RegistryResponseTooLargeException"/> once more than a set number of bytes
/// has been read since it was created or since <see cref="ResetCount"/>. Create it with
/// <see cref="RegistryStreams.Limit"/>.
/// </summary>
public sealed class LimitedStream : Stream
{
    private readonly Stream _inner;
    private readonly long _limit;
    private readonly string _description;
    private long _read;

    internal LimitedStream(Stream inner, long limit, string description)
    {
        _inner = inner;
        _limit = limit;
        _description = description;
    }

    /// <summary>Gets the number of bytes read since the stream was created or <see cref="ResetCount"/> was last called.</summary>
    public long BytesRead => _read;

    /// <summary>Gets the limit in bytes.</summary>
    public long Limit => _limit;

    /// <inheritdoc/>
    public override bool CanRead => true;

    /// <inheritdoc/>
    public override bool CanSeek => false;

    /// <inheritdoc/>
    public override bool CanWrite => false;

    /// <inheritdoc/>
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc/>
    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <summary>Starts counting again, at the start of the next event of a watch stream.</summary>
    public void ResetCount() => _read = 0;

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc/>
    public override int Read(Span<byte> buffer)
    {
        var read = _inner.Read(Cap(buffer.Length) is var cap && cap < buffer.Length ? buffer[..cap] : buffer);
        return Count(read);
    }

    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var cap = Cap(buffer.Length);
        var read = await _inner.ReadAsync(cap < buffer.Length ? buffer[..cap] : buffer, cancellationToken).ConfigureAwait(false);
        return Count(read);
    }

    /// <inheritdoc/>
    public override void Flush()
    {
    }

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    internal static RegistryResponseTooLargeException TooLarge(string description, long limit, long? length = null)
        => new(string.Create(CultureInfo.InvariantCulture,
            $"{description}: the answer is larger than the limit of {limit} bytes{(length is { } l ? $" (Content-Length {l})" : "")}; it was not read."))
        {
            Limit = limit,
        };

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <inheritdoc/>
    public override async ValueTask DisposeAsync()
    {
        await _inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }

    // Ask for at most one byte past the limit: enough to know the limit was crossed, never a large overshoot.
    private int Cap(int requested) => (int)Math.Min(requested, Math.Max(1, _limit - _read + 1));

    private int Count(int read)
    {
        _read += read;
        if (_read > _limit)
        {
            throw TooLarge(_description, _limit);
        }

        return read;
    }
}
