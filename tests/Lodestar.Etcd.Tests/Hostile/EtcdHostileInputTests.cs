using Lodestar.Etcd.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Etcd;
using static Lodestar.Testing.Etcd.FakeEtcdGateway;

namespace Lodestar.Etcd.Tests.Hostile;

/// <summary>
/// What a real etcd never sends, from <see cref="FakeEtcdGateway"/>: each case must give a clear error naming the member
/// and the item, keep the last good set, and recover once the gateway behaves.
/// </summary>
public sealed class EtcdHostileInputTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private static string Go(int port) => $"{{\"Op\":0,\"Addr\":\"127.0.0.1:{port}\",\"Metadata\":null}}";

    private static string Kv(string keyB64, string valueB64, long revision)
        => $"{{\"key\":\"{keyB64}\",\"create_revision\":\"{revision}\",\"mod_revision\":\"{revision}\",\"version\":\"1\",\"value\":\"{valueB64}\"}}";

    private static string RangeAnswer(long revision, params string[] kvs)
        => $"{{\"header\":{{\"revision\":\"{revision}\"}},\"kvs\":[{string.Join(",", kvs)}],\"count\":\"{kvs.Length}\"}}";

    /// <summary>Starts a rig on <paramref name="fake"/> and waits until its first set is published and its watch is open.</summary>
    private static async Task<SourceRig> StartWatchingAsync(FakeEtcdGateway fake, Action<EtcdOptions>? configure = null)
    {
        var rig = SourceRig.Create(fake.Url, TimeProvider.System, configure).Start();
        await Eventually.TrueAsync(() => rig.Observer.Current is not null && fake.OpenWatches == 1, s_wait, "the first set and an open watch");
        return rig;
    }

    /// <summary>Makes the source range again: history compacted past its cursor, then its stream ended (cleanly, so no error).</summary>
    private static void ForceRelist(FakeEtcdGateway fake)
    {
        fake.CompactedRevision = fake.Revision + 1;
        fake.EndWatches();
    }

    private static List<Exception> RangeErrors(SourceRig rig) => [.. rig.Observer.Errors.Where(e => e.Message.Contains("v3/kv/range", StringComparison.Ordinal))];

    private static FakeEtcdAnswer HalfAMessageThenSilence()
    {
        var answer = FakeEtcdAnswer.Json("{\"result\":{\"created\":true}}\n{\"result\":{\"events\":[{\"kv\":{\"key\":");
        answer.DetachFromLiveEvents = true;
        return answer;
    }

    [Fact]
    public async Task Range_OneValueNotBase64_ReportedNamingKeyAndMemberAndTheRestPublished()
    {
        // Arrange: three keys, the middle value is not base64.
        await using var fake = await StartAsync();
        var revision = fake.NextRevision();
        fake.RangeFault = _ => FakeEtcdAnswer.Json(RangeAnswer(revision,
            Kv(B64("orders/a"), B64(Go(7001)), 2), Kv(B64("orders/b"), "!!not*base64!!", 3), Kv(B64("orders/c"), B64(Go(7003)), 4)));

        // Act
        await using var rig = await StartWatchingAsync(fake);
        fake.Put("orders/d", Go(7004));

        // Assert: published without b, and the watch (from after the range) goes on.
        await Eventually.TrueAsync(() => rig.Observer.Addresses.Count == 3, s_wait, "d arrives through the watch");
        Assert.Equal(["127.0.0.1:7001", "127.0.0.1:7003"], rig.Observer.Sets.First().Select(e => e.Address).Order());
        Assert.Equal(["127.0.0.1:7001", "127.0.0.1:7003", "127.0.0.1:7004"], rig.Observer.Addresses);
        var error = Assert.Single(rig.Observer.Errors);
        Assert.Contains("'orders/b'", error.Message, StringComparison.Ordinal);
        Assert.Contains(fake.Url, error.Message, StringComparison.Ordinal);
        Assert.Contains("not valid base64", error.Message, StringComparison.Ordinal);
        Assert.Equal(revision + 1, fake.WatchRequests.Single().StartRevision);
    }

    [Fact]
    public async Task Range_KeyNotBase64OrEntriesOfWrongTypes_ReportedByPositionAndTheRestPublished()
    {
        // Arrange: an undecodable key, a null entry, a number entry, a key of the wrong type, then one good key.
        await using var fake = await StartAsync();
        var revision = fake.NextRevision();
        fake.RangeFault = _ => FakeEtcdAnswer.Json(RangeAnswer(revision,
            Kv("%%%", B64(Go(7001)), 2), "null", "42", "{\"key\":123,\"value\":\"\"}", Kv(B64("orders/e"), B64(Go(7005)), 3)));

        // Act
        await using var rig = await StartWatchingAsync(fake);

        // Assert
        Assert.Equal(["127.0.0.1:7005"], rig.Observer.Addresses);
        var errors = rig.Observer.Errors.Select(e => e.Message).ToList();
        Assert.Equal(4, errors.Count);
        Assert.All(errors, m => Assert.Contains(fake.Url, m, StringComparison.Ordinal));
        Assert.Contains(errors, m => m.Contains("entry 1 of 5", StringComparison.Ordinal) && m.Contains("key that is not valid base64", StringComparison.Ordinal));
        Assert.Contains(errors, m => m.Contains("entry 2 of 5", StringComparison.Ordinal) && m.Contains("null", StringComparison.Ordinal));
        Assert.Contains(errors, m => m.Contains("entry 3 of 5", StringComparison.Ordinal) && m.Contains("a number", StringComparison.Ordinal));
        Assert.Contains(errors, m => m.Contains("entry 4 of 5", StringComparison.Ordinal) && m.Contains("key that is a number", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Watch_EventsNotBase64OrOfWrongTypes_ReportedSkippedAndTheWatchMovesPastThem()
    {
        // Arrange
        await using var fake = await StartAsync();
        fake.Put("orders/a", Go(7001));
        fake.Put("orders/b", Go(7002));
        await using var rig = await StartWatchingAsync(fake);

        // Act: one message with a's value not base64, a key not base64, a null event, an event without kv, an unknown
        // type; then a good event.
        var bad = fake.NextRevision();
        fake.SendToWatches(EventMessage(bad,
            $"{{\"kv\":{Kv(B64("orders/a"), "@@@", bad)}}}",
            $"{{\"kv\":{Kv("***", B64(Go(7009)), bad)}}}",
            "null",
            "{\"kv\":null}",
            $"{{\"type\":\"BOGUS\",\"kv\":{Kv(B64("orders/z"), B64(Go(7099)), bad)}}}"));
        var good = fake.Put("orders/c", Go(7003));
        await Eventually.TrueAsync(() => rig.Observer.Addresses.Contains("127.0.0.1:7003"), s_wait, "the good event after the bad ones");
        fake.CutWatches();
        await Eventually.TrueAsync(() => fake.WatchRequests.Count == 2, s_wait, "the watch resumes");

        // Assert: a dropped (its value is unreadable now), z never added, the resumed watch starts after the good event.
        Assert.Equal(["127.0.0.1:7002", "127.0.0.1:7003"], rig.Observer.Addresses);
        var errors = rig.Observer.Errors.Select(e => e.Message).ToList();
        Assert.Contains(errors, m => m.Contains("'orders/a'", StringComparison.Ordinal) && m.Contains("value that is not valid base64", StringComparison.Ordinal) && m.Contains(fake.Url, StringComparison.Ordinal));
        Assert.Contains(errors, m => m.Contains("event 2 of 5", StringComparison.Ordinal) && m.Contains("key that is not valid base64", StringComparison.Ordinal));
        Assert.Contains(errors, m => m.Contains("event 3 of 5", StringComparison.Ordinal) && m.Contains("null", StringComparison.Ordinal));
        Assert.Contains(errors, m => m.Contains("event 4 of 5", StringComparison.Ordinal) && m.Contains("no kv", StringComparison.Ordinal));
        Assert.Contains(errors, m => m.Contains("'orders/z'", StringComparison.Ordinal) && m.Contains("neither PUT nor DELETE", StringComparison.Ordinal));
        Assert.DoesNotContain(errors, m => m.Contains("Base-64", StringComparison.Ordinal));
        Assert.Equal(good + 1, fake.WatchRequests.Last().StartRevision);
    }

    [Theory]
    [InlineData("<html><body>502 Bad Gateway</body></html>", "malformed JSON")]
    [InlineData("{\"header\":{\"revision\":\"9\"},\"kvs\":[{\"key\":\"b3JkZXJzL2E=\",\"value\":", "malformed JSON")]
    [InlineData("[1,2,3]", "an array, not an object")]
    [InlineData("null", "null, not an object")]
    [InlineData("{\"header\":{\"revision\":\"9\"},\"kvs\":{\"key\":\"b3JkZXJzL2E=\"}}", "'kvs' that is an object, not an array")]
    [InlineData("{\"kvs\":[]}", "without a header.revision")]
    [InlineData("{\"header\":{\"revision\":\"-4\"}}", "without a header.revision")]
    public async Task Range_AnswerUnusable_ClearErrorLastGoodSetKeptAndRecoversWhenTheGatewayBehaves(string body, string expected)
    {
        // Arrange: a good first set, then the source has to range again and gets the bad answer.
        await using var fake = await StartAsync();
        fake.Put("orders/a", Go(7001));
        await using var rig = await StartWatchingAsync(fake);
        fake.RangeFault = _ => FakeEtcdAnswer.Json(body);

        // Act
        ForceRelist(fake);
        await Eventually.TrueAsync(() => RangeErrors(rig).Count >= 2, s_wait, "the bad answer is reported, and again on the retry");
        var setDuringFault = rig.Observer.Addresses;
        fake.Put("orders/b", Go(7002));
        fake.RangeFault = null;

        // Assert
        await Eventually.TrueAsync(() => rig.Observer.Addresses.Count == 2, s_wait, "the next range once the gateway behaves");
        Assert.Equal(["127.0.0.1:7001"], setDuringFault);
        var error = RangeErrors(rig).First();
        Assert.Equal(rig.Observer.Errors.Count, RangeErrors(rig).Count);
        Assert.Contains(fake.Url, error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Contains("prefix 'orders/'", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("garbage that is not JSON", "malformed JSON")]
    [InlineData("[{\"result\":{}}]", "malformed JSON")]
    [InlineData("{\"result\":\"oops\"}", "'result' is a string, not an object")]
    [InlineData("{\"result\":{\"events\":{\"kv\":{}}}}", "'events' is an object, not an array")]
    [InlineData("{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no leader\",\"http_status\":\"Service Unavailable\"}}", "etcdserver: no leader")]
    public async Task Watch_MessageUnusable_ClearErrorLastGoodSetKeptAndResumedFromTheSameRevision(string message, string expected)
    {
        // Arrange
        await using var fake = await StartAsync();
        var a = fake.Put("orders/a", Go(7001));
        await using var rig = await StartWatchingAsync(fake);

        // Act
        fake.SendToWatches(message);
        await Eventually.TrueAsync(() => rig.Observer.Errors.Count == 1 && fake.WatchRequests.Count == 2, s_wait, "the error, then a new watch");
        var setAfterError = rig.Observer.Addresses;
        fake.Put("orders/b", Go(7002));

        // Assert
        await Eventually.TrueAsync(() => rig.Observer.Addresses.Count == 2, s_wait, "the resumed watch delivers b");
        Assert.Equal(["127.0.0.1:7001"], setAfterError);
        var error = rig.Observer.Errors.Single();
        Assert.Contains(fake.Url, error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Contains("prefix 'orders/'", error.Message, StringComparison.Ordinal);
        Assert.Equal([a + 1, a + 1], fake.WatchRequests.Select(w => w.StartRevision));
    }

    [Fact]
    public async Task Watch_StreamEndsInsideAMessage_ReportedAndResumedWithNothingLost()
    {
        // Arrange
        await using var fake = await StartAsync();
        var a = fake.Put("orders/a", Go(7001));
        await using var rig = await StartWatchingAsync(fake);

        // Act: half a message (cut between two tokens), then the response ends cleanly.
        fake.SendToWatches("{\"result\":{\"header\":{\"revision\":\"7\"},\"events\":[{\"kv\":{\"key\":");
        fake.EndWatches();
        await Eventually.TrueAsync(() => rig.Observer.Errors.Count == 1 && fake.WatchRequests.Count == 2, s_wait, "the error, then a new watch");
        fake.Put("orders/b", Go(7002));

        // Assert
        await Eventually.TrueAsync(() => rig.Observer.Addresses.Count == 2, s_wait, "b through the resumed watch");
        Assert.Contains("in the middle of a message", rig.Observer.Errors.Single().Message, StringComparison.Ordinal);
        Assert.Contains(fake.Url, rig.Observer.Errors.Single().Message, StringComparison.Ordinal);
        Assert.Equal([a + 1, a + 1], fake.WatchRequests.Select(w => w.StartRevision));
    }

    [Fact]
    public async Task Watch_RevisionGoesBackwards_EventIgnoredAndReportedAndTheCursorNeverMovesBack()
    {
        // Arrange
        await using var fake = await StartAsync();
        var a = fake.Put("orders/a", Go(7001));
        await using var rig = await StartWatchingAsync(fake);
        var b = fake.Put("orders/b", Go(7002));
        await Eventually.TrueAsync(() => rig.Observer.Addresses.Count == 2, s_wait, "b");

        // Act: an event at a's revision, behind the cursor; then a good one; then a cut.
        fake.SendToWatches(PutMessage("orders/z", Go(7099), a));
        var c = fake.Put("orders/c", Go(7003));
        await Eventually.TrueAsync(() => rig.Observer.Addresses.Count == 3, s_wait, "c");
        fake.CutWatches();
        await Eventually.TrueAsync(() => fake.WatchRequests.Count == 2, s_wait, "the watch resumes");

        // Assert
        Assert.DoesNotContain("127.0.0.1:7099", rig.Observer.Addresses);
        var error = Assert.Single(rig.Observer.Errors, e => e.Message.Contains("'orders/z'", StringComparison.Ordinal));
        Assert.Contains(fake.Url, error.Message, StringComparison.Ordinal);
        Assert.Contains($"mod_revision {a}, behind revision {b + 1}", error.Message, StringComparison.Ordinal);
        Assert.Equal(c + 1, fake.WatchRequests.Last().StartRevision);
    }

    [Fact]
    public async Task Watch_MessageDripsInByteByByte_AppliedOnceComplete()
    {
        // Arrange
        await using var fake = await StartAsync();
        fake.Put("orders/a", Go(7001));
        await using var rig = await StartWatchingAsync(fake);

        // Act: about 250 bytes, 1 ms apart.
        fake.SendToWatches(PutMessage("orders/b", Go(7002), fake.NextRevision()), TimeSpan.FromMilliseconds(1));

        // Assert
        await Eventually.TrueAsync(() => rig.Observer.Addresses.Count == 2, s_wait, "the dripped event");
        Assert.Empty(rig.Observer.Errors);
        Assert.Single(fake.WatchRequests);
    }

    [Fact]
    public async Task Watch_StreamStallsInsideAMessage_StallReportedAndResumedWithNothingLost()
    {
        // Arrange: the first watch sends created and half an event, then nothing at all; later watches behave.
        await using var fake = await StartAsync();
        var a = fake.Put("orders/a", Go(7001));
        var stalled = 0;
        fake.WatchFault = _ => Interlocked.Increment(ref stalled) == 1 ? HalfAMessageThenSilence() : null;
        await using var rig = await StartWatchingAsync(fake, o => o.WatchProgressTimeout = TimeSpan.FromMilliseconds(500));

        // Act: a change the stalled stream never carries.
        var b = fake.Put("orders/b", Go(7002));
        await Eventually.TrueAsync(() => rig.Observer.Addresses.Count == 2, s_wait, "b through the next watch");

        // Assert
        var error = Assert.Single(rig.Observer.Errors);
        Assert.Contains(fake.Url, error.Message, StringComparison.Ordinal);
        Assert.Contains("WatchProgressTimeout", error.Message, StringComparison.Ordinal);
        Assert.Equal([a + 1, a + 1], fake.WatchRequests.Select(w => w.StartRevision));
        Assert.True(b > a);
    }
}
