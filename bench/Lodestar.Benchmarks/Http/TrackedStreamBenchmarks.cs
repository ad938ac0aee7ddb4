using BenchmarkDotNet.Attributes;
using Lodestar.Http.Internal;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Benchmarks.Http;

/// <summary>
/// What connection tracking adds to one request's bytes on a connection: a write of the request and a read of the
/// response, each completing at once as on a socket with room in its buffers and an answer already there, straight on
/// the connection's stream and through the <see cref="TrackedStream"/> that Lodestar's connect callback wraps it in.
/// </summary>
[MemoryDiagnoser]
public class TrackedStreamBenchmarks
{
    private readonly byte[] _request = new byte[96];
    private readonly byte[] _buffer = new byte[4096];
    private ServiceProvider _services = null!;
    private Stream _raw = null!;
    private Stream _tracked = null!;

    [GlobalSetup]
    public void Setup()
    {
        _services = new ServiceCollection().AddLogging().AddLodestar().Services.BuildServiceProvider();
        _raw = new ImmediateStream();
        _tracked = new TrackedStream(new ImmediateStream(), _services.GetRequiredService<ConnectionRetirer>(), "127.0.0.1:5000");
    }

    [Benchmark(Baseline = true)]
    public ValueTask<int> Raw() => WriteThenReadAsync(_raw);

    [Benchmark]
    public ValueTask<int> Tracked() => WriteThenReadAsync(_tracked);

    [GlobalCleanup]
    public void Cleanup()
    {
        _tracked.Dispose();
        _services.Dispose();
    }

    private async ValueTask<int> WriteThenReadAsync(Stream stream)
    {
        await stream.WriteAsync(_request);
        return await stream.ReadAsync(_buffer);
    }

    /// <summary>A connection whose writes always fit and whose reads always find a 128-byte answer waiting.</summary>
    private sealed class ImmediateStream : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Math.Min(count, 128);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(Math.Min(buffer.Length, 128));

        public override void Write(byte[] buffer, int offset, int count)
        {
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => default;

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
