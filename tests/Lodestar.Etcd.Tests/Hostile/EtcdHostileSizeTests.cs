using Lodestar.Discovery;
using Lodestar.Etcd.Client.Internal;
using Lodestar.Etcd.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Etcd;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Lodestar.Etcd.Tests.Hostile;

/// <summary>
/// Allocation is measured process-wide (<see cref="GC.GetTotalAllocatedBytes(bool)"/>), so these tests run alone: not
/// in parallel with any other test of this assembly.
/// </summary>
[CollectionDefinition(nameof(AllocationMeasurements), DisableParallelization = true)]
public sealed class AllocationMeasurements;

/// <summary>
/// Answers far over the size caps from <see cref="FakeEtcdGateway"/>: refused with a clear error naming the member and
/// the limit, with allocation bounded by the cap rather than by what the server sends, and recovered from.
/// </summary>
[Collection(nameof(AllocationMeasurements))]
public sealed class EtcdHostileSizeTests(ITestOutputHelper output)
{
    private const long Cap = 1024 * 1024;
    private const long Sent = 64 * 1024 * 1024;

    /// <summary>What a read may allocate beyond the cap: buffers, the JSON reader, the exception, the HTTP stack.</summary>
    private const long Allowance = 7 * 1024 * 1024;

    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private static string Go(int port) => $"{{\"Op\":0,\"Addr\":\"127.0.0.1:{port}\",\"Metadata\":null}}";

    private static FakeEtcdAnswer HugeRange(bool announceLength)
    {
        const string Start = "{\"header\":{\"revision\":\"5\"},\"kvs\":[{\"key\":\"b3JkZXJzL2E=\",\"value\":\"";
        const string End = "\"}]}";
        var answer = FakeEtcdAnswer.Huge(Start, Sent, End);
        if (announceLength)
        {
            answer.ContentLength = Start.Length + Sent + End.Length;
        }

        return answer;
    }

    private static async Task<(T Result, long Allocated)> MeasureAsync<T>(Func<Task<T>> action)
    {
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var result = await action();
        return (result, GC.GetTotalAllocatedBytes(precise: true) - before);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task RangePrefixAsync_AnswerFarOverTheCap_RefusedNamingMemberAndLimitWithBoundedAllocation(bool announceLength)
    {
        // Arrange: a 1 MiB cap, a 64 MiB answer (streamed, or announced by Content-Length).
        await using var fake = await FakeEtcdGateway.StartAsync();
        var options = new EtcdOptions { Address = fake.Url, MaxRangeResponseBytes = Cap };
        using var client = new EtcdClient(options, TimeProvider.System, NullLogger<EtcdClient>.Instance);
        await client.RangePrefixAsync("orders/", default);
        fake.RangeFault = _ => HugeRange(announceLength);

        // Act
        var (error, allocated) = await MeasureAsync(() => Assert.ThrowsAsync<RegistryResponseTooLargeException>(() => client.RangePrefixAsync("orders/", default)));

        // Assert
        output.WriteLine($"range answer of {Sent} bytes (Content-Length announced: {announceLength}), cap {Cap}: allocated {allocated} bytes");
        Assert.Equal(Cap, error.Limit);
        Assert.Contains(fake.Url, error.Message, StringComparison.Ordinal);
        Assert.Contains("v3/kv/range of 'orders/'", error.Message, StringComparison.Ordinal);
        Assert.Contains("1048576 bytes", error.Message, StringComparison.Ordinal);
        Assert.Contains("MaxRangeResponseBytes", error.Message, StringComparison.Ordinal);
        Assert.True(allocated < Cap + Allowance, $"allocated {allocated} bytes reading an answer of {Sent} bytes with a cap of {Cap}");
    }

    [Fact]
    public async Task Source_RangeOverTheCap_ErrorNamesMemberAndLimitLastGoodSetKeptAndRecovers()
    {
        // Arrange: a good set first; then the source must range again and gets 64 MiB.
        await using var fake = await FakeEtcdGateway.StartAsync();
        fake.Put("orders/a", Go(7001));
        await using var rig = SourceRig.Create(fake.Url, TimeProvider.System, o => o.MaxRangeResponseBytes = Cap).Start();
        await Eventually.TrueAsync(() => rig.Observer.Current is { Count: 1 } && fake.OpenWatches == 1, s_wait, "the first set and an open watch");
        fake.RangeFault = _ => HugeRange(announceLength: false);

        // Act
        fake.CompactedRevision = fake.Revision + 1;
        fake.EndWatches();
        await Eventually.TrueAsync(() => rig.Observer.Errors.Count >= 1, s_wait, "the oversized range is reported");
        var setDuringFault = rig.Observer.Addresses;
        fake.Put("orders/b", Go(7002));
        fake.RangeFault = null;

        // Assert
        await Eventually.TrueAsync(() => rig.Observer.Addresses.Count == 2, s_wait, "the next range, once the gateway behaves");
        Assert.Equal(["127.0.0.1:7001"], setDuringFault);
        var error = rig.Observer.Errors.First();
        Assert.Contains(fake.Url, error.Message, StringComparison.Ordinal);
        Assert.Contains("1048576 bytes", error.Message, StringComparison.Ordinal);
        Assert.Contains("prefix 'orders/'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Source_WatchMessageOverTheCap_ReportedWithBoundedAllocationThenRangedAgainAndRecovers()
    {
        // Arrange
        await using var fake = await FakeEtcdGateway.StartAsync();
        fake.Put("orders/a", Go(7001));
        await using var rig = SourceRig.Create(fake.Url, TimeProvider.System, o => o.MaxWatchMessageBytes = Cap).Start();
        await Eventually.TrueAsync(() => rig.Observer.Current is { Count: 1 } && fake.OpenWatches == 1, s_wait, "the first set and an open watch");
        var rangesBefore = fake.Requests.Count(r => r.Path == "/v3/kv/range");

        // Act: one 64 MiB message.
        var (_, allocated) = await MeasureAsync(async () =>
        {
            fake.SendHugeToWatches(Sent);
            await Eventually.TrueAsync(() => rig.Observer.Errors.Count == 1, s_wait, "the oversized message is reported");
            return 0;
        });
        await Eventually.TrueAsync(() => fake.WatchRequests.Count == 2, s_wait, "a new watch after a fresh range");
        var setAfterError = rig.Observer.Addresses;
        fake.Put("orders/b", Go(7002));

        // Assert
        output.WriteLine($"watch message of {Sent} bytes, cap {Cap}: allocated {allocated} bytes until the error was reported");
        await Eventually.TrueAsync(() => rig.Observer.Addresses.Count == 2, s_wait, "b through the new watch");
        Assert.Equal(["127.0.0.1:7001"], setAfterError);
        var error = rig.Observer.Errors.Single();
        Assert.Contains(fake.Url, error.Message, StringComparison.Ordinal);
        Assert.Contains("1048576 bytes", error.Message, StringComparison.Ordinal);
        Assert.Contains("MaxWatchMessageBytes", error.Message, StringComparison.Ordinal);
        Assert.Equal(rangesBefore + 1, fake.Requests.Count(r => r.Path == "/v3/kv/range"));
        Assert.True(allocated < Cap + Allowance, $"allocated {allocated} bytes while a {Sent}-byte message arrived, with a cap of {Cap}");
    }
}
