using Lodestar.Kubernetes.Api.Internal;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Kubernetes.Tests.Api;

public sealed class TokenBucketTests
{
    [Fact]
    public async Task AcquireAsync_BeyondBurst_WaitsForTheRate()
    {
        var time = new FakeTimeProvider();
        var bucket = new TokenBucket(qps: 2, burst: 3, time);

        for (var i = 0; i < 3; i++)
        {
            Assert.True(bucket.AcquireAsync(default).IsCompletedSuccessfully, "the burst goes out at once");
        }

        var fourth = bucket.AcquireAsync(default).AsTask();
        var fifth = bucket.AcquireAsync(default).AsTask();
        Assert.False(fourth.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(500));
        await fourth.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(fifth.IsCompleted, "one token per 500 ms at 2 qps");
        time.Advance(TimeSpan.FromMilliseconds(500));
        await fifth.WaitAsync(TimeSpan.FromSeconds(5));
    }
}
