using Lodestar.Kubernetes.Discovery.Internal;

namespace Lodestar.Kubernetes.Tests.Discovery;

/// <summary>A member's queue of messages from its shared watch.</summary>
public sealed class NamespaceWatchMemberTests
{
    [Fact]
    public async Task ReadAsync_FailuresQueuedBackToBack_OnlyTheLastIsRead()
    {
        using var member = new NamespaceWatchMember("orders");
        var first = new InvalidOperationException("first");
        var second = new InvalidOperationException("second");
        member.Send(HubMessage.Failure(first));
        member.Send(HubMessage.Failure(second));
        member.Send(HubMessage.Progress("42"));
        member.Send(HubMessage.Failure(first));

        var read = new List<HubMessage>();
        for (var i = 0; i < 3; i++)
        {
            read.Add(await member.ReadAsync(CancellationToken.None));
        }

        // A member backing off after the first failure would otherwise replay a stale one, and back off again.
        Assert.Equal([HubMessageKind.Failure, HubMessageKind.Progress, HubMessageKind.Failure], read.Select(static m => m.Kind).ToArray());
        Assert.Same(second, read[0].Error);
        Assert.Equal("42", read[1].ResourceVersion);
        Assert.Same(first, read[2].Error);
    }
}
