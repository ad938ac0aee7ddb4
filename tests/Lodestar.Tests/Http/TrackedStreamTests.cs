using Lodestar.Http.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Tests.Http;

/// <summary>
/// A tracked connection counts a write as activity when it ends and a read when it starts (the transport starts its next
/// read as soon as one ends), whether the transport completes them at once or later; a read that waits is not activity,
/// and a retired connection closes only after a quiet period with no write pending, counted from when its address left
/// at the earliest.
/// </summary>
public sealed class TrackedStreamTests
{
    private static readonly TimeSpan s_quiet = TimeSpan.FromSeconds(2);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task WriteAsync_CompletesAtOnceOrLater_CountsAsActivityWhenItEnds(bool later)
    {
        // Arrange: the address has left; the check looks at once and every half quiet period.
        var (clock, inner, stream) = Create();
        inner.WriteGate = later ? new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) : null;
        stream.Retire();
        clock.Advance(s_quiet / 2);

        // Act: a write between two checks, half a quiet period after the address left.
        var write = stream.WriteAsync(new byte[] { 1, 2, 3 }).AsTask();
        inner.WriteGate?.SetResult();
        await write;
        clock.Advance(s_quiet / 2);

        // Assert: a quiet period after the address left, the write keeps it open; a quiet period after the check
        // that saw the write, it closes.
        Assert.False(inner.Disposed);
        Assert.Equal([1, 2, 3], inner.Written.ToArray());
        clock.Advance(s_quiet / 2);
        Assert.False(inner.Disposed);
        clock.Advance(s_quiet / 2);
        Assert.True(inner.Disposed);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ReadAsync_CompletesAtOnceOrLater_ReturnsTheBytesAndCountsAsActivity(bool later)
    {
        // Arrange
        var (clock, inner, stream) = Create();
        inner.Readable = [7, 8];
        inner.ReadGate = later ? new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) : null;
        stream.Retire();
        clock.Advance(s_quiet / 2);

        // Act: a read between two checks.
        var buffer = new byte[4];
        var read = stream.ReadAsync(buffer).AsTask();
        inner.ReadGate?.SetResult();
        var count = await read;
        clock.Advance(s_quiet / 2);

        // Assert
        Assert.Equal(2, count);
        Assert.Equal([7, 8], buffer[..2]);
        Assert.False(inner.Disposed);
        clock.Advance(s_quiet);
        Assert.True(inner.Disposed);
    }

    [Fact]
    public void ReadAsync_Pending_DoesNotKeepARetiredConnectionOpen()
    {
        // Arrange: a read waits for bytes that do not come, as an idle connection's read-ahead does.
        var (clock, inner, stream) = Create();
        inner.Readable = [1];
        inner.ReadGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var read = stream.ReadAsync(new byte[4]);
        stream.Retire();

        // Act
        clock.Advance(s_quiet);

        // Assert: a quiet period after the read started, the connection closes with the read still waiting.
        Assert.False(read.IsCompleted);
        Assert.True(inner.Disposed);
    }

    [Fact]
    public void WriteAsync_Pending_KeepsARetiredConnectionOpenUntilItEnds()
    {
        // Arrange
        var (clock, inner, stream) = Create();
        inner.WriteGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var write = stream.WriteAsync(new byte[] { 1 });
        stream.Retire();

        // Act
        clock.Advance(s_quiet * 3);

        // Assert
        Assert.False(write.IsCompleted);
        Assert.False(inner.Disposed);
    }

    [Fact]
    public async Task WriteAsync_TransportThrowsAtOnce_FailsTheWriteAndLeavesNoWritePending()
    {
        // Arrange
        var (clock, inner, stream) = Create();
        inner.Failure = new IOException("broken pipe");

        // Act
        var write = stream.WriteAsync(new byte[] { 1 });
        stream.Retire();
        clock.Advance(s_quiet);

        // Assert: the error comes with the returned task, and the failed write holds nothing open.
        var error = await Assert.ThrowsAsync<IOException>(() => write.AsTask());
        Assert.Equal("broken pipe", error.Message);
        Assert.True(inner.Disposed);
    }

    [Fact]
    public async Task ReadAsync_TransportThrowsAtOnce_FailsTheRead()
    {
        // Arrange
        var (_, inner, stream) = Create();
        inner.Failure = new IOException("reset");

        // Act
        var read = stream.ReadAsync(new byte[4]);

        // Assert
        var error = await Assert.ThrowsAsync<IOException>(() => read.AsTask());
        Assert.Equal("reset", error.Message);
    }

    private static (FakeTimeProvider Clock, ScriptedStream Inner, TrackedStream Stream) Create()
    {
        var clock = new FakeTimeProvider();
        var retirer = new ConnectionRetirer(clock, new FixedOptionsMonitor(new LodestarOptions { RetireQuietPeriod = s_quiet }), NullLogger<ConnectionRetirer>.Instance);
        var inner = new ScriptedStream();
        return (clock, inner, new TrackedStream(inner, retirer, "127.0.0.1:9001"));
    }

    private sealed class FixedOptionsMonitor(LodestarOptions value) : IOptionsMonitor<LodestarOptions>
    {
        public LodestarOptions CurrentValue => value;

        public LodestarOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<LodestarOptions, string?> listener) => null;
    }

    /// <summary>Completes reads and writes at once, or when its gate opens; throws <see cref="Failure"/> at once when set.</summary>
    private sealed class ScriptedStream : Stream
    {
        public TaskCompletionSource? WriteGate { get; set; }

        public TaskCompletionSource? ReadGate { get; set; }

        public Exception? Failure { get; set; }

        public byte[] Readable { get; set; } = [];

        public MemoryStream Written { get; } = new();

        public bool Disposed { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Failure is { } failure)
            {
                throw failure;
            }

            return ReadGate is { } gate ? new ValueTask<int>(gate.Task.ContinueWith(_ => Copy(buffer), TaskScheduler.Default)) : new ValueTask<int>(Copy(buffer));
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Failure is { } failure)
            {
                throw failure;
            }

            Written.Write(buffer.Span);
            return WriteGate is { } gate ? new ValueTask(gate.Task) : default;
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }

        private int Copy(Memory<byte> buffer)
        {
            Readable.CopyTo(buffer);
            return Readable.Length;
        }
    }
}
