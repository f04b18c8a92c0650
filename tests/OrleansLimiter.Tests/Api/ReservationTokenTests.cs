using OrleansLimiter.Gateway.Api;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Api;

[Trait(Tier.Name, Tier.Unit)]
public sealed class ReservationTokenTests
{
    [Fact]
    public void Format_RoundTrips_ProviderKeyAndId()
    {
        var id = RequestId.New();
        var token = ReservationToken.Format("openai", "gpt-4o:team@a", id);
        Assert.Equal(("openai", "gpt-4o:team@a", id), ReservationToken.TryParse(token));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("rsv_")]
    [InlineData("rsv_!!!")]
    [InlineData("abc")]
    [InlineData("rsv_b3BlbmFpCmdsb2JhbA")] // "openai\nglobal": no id
    public void TryParse_RefusesWhatFormatDidNotMake(string? token) => Assert.Null(ReservationToken.TryParse(token));
}
