using System.Text;
using Lodestar.Consul.Internal;
using Lodestar.Consul.Tests.Infrastructure;
using Lodestar.Discovery;
using Lodestar.Testing;
using Lodestar.Testing.Consul;
using Xunit.Abstractions;

namespace Lodestar.Consul.Tests.Hostile;

/// <summary>Runs alone: these tests measure bytes allocated by the whole process.</summary>
[CollectionDefinition(nameof(AllocationMeasurements), DisableParallelization = true)]
public sealed class AllocationMeasurements;

/// <summary>
/// What reading an answer over <see cref="ConsulOptions.MaxResponseBytes"/> costs, in bytes allocated around the read:
/// about the limit, whatever the size of the answer.
/// </summary>
[Collection(nameof(AllocationMeasurements))]
public sealed class AnswerSizeTests(ITestOutputHelper output)
{
    private const int Limit = 1024 * 1024;
    private const int TenMegabytes = 10 * 1024 * 1024;

    [Fact]
    public async Task ReadAsync_AnswerTenTimesTheLimit_FailsAfterAllocatingAboutTheLimit()
    {
        // Arrange: an answer of realistic entries, produced as it is read (the test itself holds one entry).
        var measured = new List<long>();
        for (var run = 0; run < 2; run++)
        {
            using var answer = RegistryStreams.Limit(new GeneratedAnswer(TenMegabytes), Limit, "Consul at http://127.0.0.1:8500: GET /v1/health/service/orders");

            // Act: the stream completes synchronously, so the whole read runs on this thread.
            var before = GC.GetAllocatedBytesForCurrentThread();
            var error = await Assert.ThrowsAsync<RegistryResponseTooLargeException>(() => HealthAnswerReader.ReadAsync(answer, (_, _) => { }, CancellationToken.None));
            measured.Add(GC.GetAllocatedBytesForCurrentThread() - before);

            // Assert
            Assert.Equal(Limit, error.Limit);
            Assert.Contains("Consul at http://127.0.0.1:8500: GET /v1/health/service/orders: the answer is larger than the limit of 1048576 bytes", error.Message, StringComparison.Ordinal);
        }

        output.WriteLine($"10 MiB answer, 1 MiB limit: {measured[0]:N0} bytes allocated on the first read, {measured[1]:N0} on the second (pooled segments reused)");
        Assert.True(measured[0] < Limit * 1.25, $"first read allocated {measured[0]:N0} bytes");
        Assert.True(measured[1] < Limit / 4, $"second read allocated {measured[1]:N0} bytes");
    }

    [Fact]
    public async Task GetHealthServiceAsync_AgentSendsTenMegabytes_FailsNamingAgentAndLimitAndAllocatesAboutTheLimit()
    {
        // Arrange: the agent writes a cached 10 MiB answer (chunked, no Content-Length) in 64 KB writes.
        await using var agent = await FakeConsulAgent.StartAsync();
        await using var host = ConsulClientHost.Create(agent, o => o.MaxResponseBytes = Limit);
        var api = (ConsulApi)host.Services.GetService(typeof(ConsulApi))!;
        await api.GetHealthServiceAsync("orders", 0, (_, _) => { }, CancellationToken.None); // warm the connection and the JSON metadata
        var measured = new List<long>();
        for (var run = 0; run < 3; run++) // the first run builds the agent's cached answer and is not measured
        {
            agent.InjectHealthFault(ConsulFault.Oversized(TenMegabytes, declareLength: false));

            // Act
            var before = GC.GetTotalAllocatedBytes(precise: true);
            var error = await Assert.ThrowsAsync<ConsulException>(() => api.GetHealthServiceAsync("orders", 0, (_, _) => { }, CancellationToken.None));
            if (run > 0)
            {
                measured.Add(GC.GetTotalAllocatedBytes(precise: true) - before);
            }

            // Assert
            Assert.Contains($"Consul at {agent.Address}: GET /v1/health/service/orders: the answer is larger than the limit of {Limit} bytes", error.Message, StringComparison.Ordinal);
        }

        output.WriteLine($"10 MiB answer from the agent, 1 MiB limit: {measured[0]:N0} and {measured[1]:N0} bytes allocated by the process around the query");
        Assert.All(measured, bytes => Assert.True(bytes < Limit * 2, $"allocated {bytes:N0} bytes"));

        // The agent behaves again: the next answer is read.
        var entries = 0;
        agent.Register("orders-7001", "orders", "127.0.0.1", 7001);
        await api.GetHealthServiceAsync("orders", 0, (_, _) => entries++, CancellationToken.None);
        Assert.Equal(1, entries);
    }

    [Fact]
    public async Task GetHealthServiceAsync_EightMegabyteErrorPage_ReadsFourKilobytesAndKeepsTheMessageShort()
    {
        // Arrange
        await using var agent = await FakeConsulAgent.StartAsync();
        await using var host = ConsulClientHost.Create(agent);
        var api = (ConsulApi)host.Services.GetService(typeof(ConsulApi))!;
        await api.GetHealthServiceAsync("orders", 0, (_, _) => { }, CancellationToken.None);
        var page = "No cluster leader " + new string('x', 8 * 1024 * 1024);
        agent.InjectHealthFault(ConsulFault.Body("8 MB error page", page, status: 500));

        // Act
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var error = await Assert.ThrowsAsync<ConsulException>(() => api.GetHealthServiceAsync("orders", 0, (_, _) => { }, CancellationToken.None));
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        // Assert
        output.WriteLine($"8 MiB error page: {allocated:N0} bytes allocated by the process around the query; message {error.Message.Length} characters");
        Assert.Contains("answered 500 InternalServerError: No cluster leader xxx", error.Message, StringComparison.Ordinal);
        Assert.True(error.Message.Length < 512, error.Message);
        Assert.True(allocated < 512 * 1024, $"allocated {allocated:N0} bytes");
    }

    /// <summary>A health answer of <c>size</c> bytes of realistic entries, generated as it is read.</summary>
    private sealed class GeneratedAnswer(long size) : Stream
    {
        private static readonly byte[] s_entry = Encoding.UTF8.GetBytes(
            """{"Node":{"Node":"node-1","Address":"10.0.0.1","Datacenter":"dc1","Meta":{"rack":"r1"}},"Service":{"ID":"orders-1","Service":"orders","Tags":["v2"],"Address":"10.1.0.1","Port":8080,"Meta":{"version":"2.3"},"Weights":{"Passing":1,"Warning":1}},"Checks":[{"CheckID":"serfHealth","Status":"passing","Output":"Agent alive and reachable"}]},""");

        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => size;

        public override long Position
        {
            get => _position;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var written = 0;
            while (written < buffer.Length && _position < size)
            {
                var value = _position == 0 ? (byte)'[' : s_entry[(int)((_position - 1) % s_entry.Length)];
                buffer[written++] = value;
                _position++;
            }

            return written;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            => new(Read(buffer.Span));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => Task.FromResult(Read(buffer, offset, count));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
