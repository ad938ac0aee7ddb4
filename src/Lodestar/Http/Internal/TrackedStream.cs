using System.Runtime.CompilerServices;

namespace Lodestar.Http.Internal;

/// <summary>
/// A connection stream that counts its reads and writes, so <see cref="ConnectionRetirer"/> can tell an idle pooled
/// connection from a busy one once its address has left. Pending reads do not count as activity: an idle HTTP/2
/// connection always has one, and an idle HTTP/1.1 connection may have a read-ahead. While any request to the address
/// still waits for its response headers, no connection to it counts as idle, so a slow server is not mistaken for an
/// idle one.
/// </summary>
/// <remarks>
/// A read or write reads no clock: it bumps a count the retirement check compares with what it saw last. The check
/// starts when the address leaves and runs every half quiet period; a connection whose count has not moved for a quiet
/// period by the check's clock, with no write pending, is closed. So a connection is closed a quiet period after the
/// address left at the earliest, and between one and one and a half periods after its last bytes.
/// </remarks>
internal sealed class TrackedStream : Stream
{
    private readonly Stream _inner;
    private readonly ConnectionRetirer _owner;
    private readonly Lock _gate = new();
    // Bumped without a lock as a read starts and as a write ends; only whether it moved matters, so a bump lost to a
    // racing one still shows the move.
    private int _activity;
    private int _pendingWrites;
    private ITimer? _retireTimer;
    private int _closed;

    // The retirement check's own: the count at its last look, and when it last saw it move (or retirement began).
    private int _lastSeen;
    private long _quietSince;

    public TrackedStream(Stream inner, ConnectionRetirer owner, string address)
    {
        _inner = inner;
        _owner = owner;
        Address = address;
    }

    public string Address { get; }

    public override bool CanRead => _inner.CanRead;

    public override bool CanSeek => false;

    public override bool CanWrite => _inner.CanWrite;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>Closes the connection once it is quiet; checks now and then every half quiet period.</summary>
    public void Retire()
    {
        var period = _owner.QuietPeriod;
        var interval = TimeSpan.FromMilliseconds(Math.Max(50, period.TotalMilliseconds / 2));
        lock (_gate)
        {
            if (_retireTimer is not null || Volatile.Read(ref _closed) != 0)
            {
                return;
            }

            _lastSeen = Volatile.Read(ref _activity);
            _quietSince = _owner.TimeProvider.GetTimestamp();

            // Timers must not capture the caller's ExecutionContext.
            using (ExecutionContext.SuppressFlow())
            {
                _retireTimer = _owner.TimeProvider.CreateTimer(static s => ((TrackedStream)s!).CheckQuiet(), this, TimeSpan.Zero, interval);
            }
        }
    }

    public void CancelRetirement()
    {
        ITimer? timer;
        lock (_gate)
        {
            timer = _retireTimer;
            _retireTimer = null;
        }

        timer?.Dispose();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var read = _inner.Read(buffer);
        Touch();
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <remarks>
    /// Counted as the read starts, and the inner stream's task handed back as it is: the transport starts its next read
    /// as soon as one completes, so the start of a read is when the previous one moved bytes, and a read that waits (the
    /// response to a request, an idle connection's read-ahead) costs no state machine of its own.
    /// </remarks>
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Touch();
        try
        {
            return _inner.ReadAsync(buffer, cancellationToken);
        }
        catch (Exception ex)
        {
            return ValueTask.FromException<int>(ex);
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Interlocked.Increment(ref _pendingWrites);
        try
        {
            _inner.Write(buffer);
        }
        finally
        {
            Touch();
            Interlocked.Decrement(ref _pendingWrites);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _pendingWrites);
        ValueTask pending;
        try
        {
            pending = _inner.WriteAsync(buffer, cancellationToken);
        }
        catch (Exception ex)
        {
            EndWrite();
            return ValueTask.FromException(ex);
        }

        if (!pending.IsCompletedSuccessfully)
        {
            return AwaitWriteAsync(pending);
        }

        // A socket with room in its send buffer (nearly every write) completes at once: no state machine for this write.
        pending.GetAwaiter().GetResult();
        EndWrite();
        return default;
    }

    public override void Flush() => _inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Close(retired: false);
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        Close(retired: false);
        await base.DisposeAsync().ConfigureAwait(false);
    }

    private void Touch() => _activity++;

    private void EndWrite()
    {
        Touch();
        Interlocked.Decrement(ref _pendingWrites);
    }

    // A pooled builder: a write that completes later would otherwise allocate its state machine on every call.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask AwaitWriteAsync(ValueTask pending)
    {
        try
        {
            await pending.ConfigureAwait(false);
        }
        finally
        {
            EndWrite();
        }
    }

    private void CheckQuiet()
    {
        try
        {
            bool quiet;
            lock (_gate)
            {
                var now = _owner.TimeProvider.GetTimestamp();
                var seen = Volatile.Read(ref _activity);
                if (seen != _lastSeen)
                {
                    _lastSeen = seen;
                    _quietSince = now;
                }

                quiet = _owner.TimeProvider.GetElapsedTime(_quietSince, now) >= _owner.QuietPeriod;
            }

            if (quiet && Volatile.Read(ref _pendingWrites) == 0 && !_owner.IsAwaitingResponse(Address))
            {
                // Closing the socket under SocketsHttpHandler is how a server's close looks to it: the pool
                // discards the connection when its read completes.
                Close(retired: true);
            }
        }
        catch (Exception ex)
        {
            _owner.OnRetireCheckFailed(Address, ex);
        }
    }

    private void Close(bool retired)
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        CancelRetirement();
        _inner.Dispose();
        _owner.OnClosed(this, retired);
    }
}
